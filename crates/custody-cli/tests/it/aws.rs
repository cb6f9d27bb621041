//! The ECS, Lambda and S3 reporters through the AWS SDK, against moto's
//! server with real buckets, functions and tasks created through the AWS
//! APIs.

use crate::common;

use common::moto::Moto;
use common::{Db, Server};
use serde_json::Value;

fn custody(s: &Server, moto: &Moto, args: &[&str]) -> common::Run {
    custody_at(s, moto.env(), args)
}

fn custody_at(s: &Server, env: Vec<(&'static str, String)>, args: &[&str]) -> common::Run {
    let out = s.custody().command().envs(env).args(args).output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn snapshot(s: &Server, env: &str) -> Value {
    s.custody()
        .run(&["get", "snapshot", env, "--output", "json"])
        .ok()
        .json()
}

both!(ecs_tasks_are_reported_by_cluster_and_service);
fn ecs_tasks_are_reported_by_cluster_and_service(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let mut moto = Moto::start();
    let web = "a".repeat(64);
    moto.python(&format!(
        r#"
ec2, ecs = aws('ec2'), aws('ecs')
for cluster in ['prod', 'batch']:
    ecs.create_cluster(clusterName=cluster)
    inst = ec2.run_instances(ImageId='ami-12c6146b', MinCount=1, MaxCount=1)['Instances'][0]
    doc = json.dumps({{'instanceId': inst['InstanceId'], 'region': 'us-east-1', 'availabilityZone': 'us-east-1a'}})
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=doc)
ecs.register_task_definition(family='web', containerDefinitions=[{{'name': 'web', 'image': 'nginx@sha256:{web}', 'memory': 128}}])
ecs.register_task_definition(family='tagged', containerDefinitions=[{{'name': 'worker', 'image': 'worker:2', 'memory': 128}}])
ecs.run_task(cluster='prod', taskDefinition='web', count=2, launchType='EC2', group='service:web')
ecs.run_task(cluster='prod', taskDefinition='tagged', count=1, launchType='EC2', group='service:worker')
ecs.run_task(cluster='batch', taskDefinition='tagged', count=1, launchType='EC2')
"#
    ));
    let mut env = moto.env();
    env.push(("AWS_ENDPOINT_URL_ECS", moto.ecs()));
    let r = custody_at(
        &s,
        env.clone(),
        &["snapshot", "ecs", "prod-ecs", "--clusters", "prod", "-A"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[3] tasks were reported"), "{}", r.stdout);
    let snap = snapshot(&s, "prod-ecs");
    let arts = snap["artifacts"].as_array().unwrap();
    let got: Vec<(&str, Option<&str>, u64)> = arts
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["fingerprint"].as_str(),
                a["instance_count"].as_u64().unwrap(),
            )
        })
        .collect();
    let image = format!("nginx@sha256:{web}");
    assert_eq!(
        got,
        vec![
            (image.as_str(), Some(web.as_str()), 2),
            ("worker:2", None, 1)
        ]
    );
    assert_eq!(arts[0]["instances"][0]["attributes"]["cluster"], "prod");
    assert_eq!(arts[0]["instances"][0]["attributes"]["service"], "web");
    assert!(
        arts[0]["instances"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:ecs:")
    );

    // Service filters; a standalone task has no service.
    let r = custody_at(
        &s,
        env,
        &[
            "snapshot",
            "ecs",
            "web-only",
            "--services",
            "web",
            "-A",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let snap = snapshot(&s, "web-only");
    assert_eq!(snap["artifacts"].as_array().unwrap().len(), 1);
    custody(
        &s,
        &moto,
        &["snapshot", "ecs", "x", "--clusters", "a", "--exclude", "b"],
    )
    .fails(2, "cannot combine '--clusters' with '--exclude'");
}

both!(lambda_functions_are_fingerprinted_by_their_code);
fn lambda_functions_are_fingerprinted_by_their_code(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let moto = Moto::start();
    let out = moto.python(
        r#"
role = aws('iam').create_role(RoleName='fn', AssumeRolePolicyDocument='{}')['Role']['Arn']
lam = aws('lambda')
shas = {}
for name, body in [('pay', 'def h(e, c):\n    return 1\n'), ('mail', 'def h(e, c):\n    return 2\n')]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        z.writestr('handler.py', body)
    f = lam.create_function(FunctionName=name, Runtime='python3.12', Role=role, Handler='handler.h', Code={'ZipFile': buf.getvalue()})
    shas[name] = f['CodeSha256']
print(json.dumps(shas))
"#,
    );
    let shas: Value = serde_json::from_str(&out).unwrap();
    let r = custody(
        &s,
        &moto,
        &["snapshot", "lambda", "fns", "--function-names", "pay", "-A"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let snap = snapshot(&s, "fns");
    let arts = snap["artifacts"].as_array().unwrap();
    assert_eq!(arts.len(), 1);
    assert_eq!(arts[0]["name"], "pay");
    // CodeSha256 is base64; the fingerprint is its hex.
    let b64 = shas["pay"].as_str().unwrap();
    let hex: String = {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                &format!("import base64; print(base64.b64decode('{b64}').hex())"),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(arts[0]["fingerprint"], hex.as_str());
    assert_eq!(
        arts[0]["instances"][0]["attributes"]["runtime"],
        "python3.12"
    );

    let r = custody(
        &s,
        &moto,
        &["snapshot", "lambda", "fns", "--output", "json"],
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["snapshot"], 2);
    assert_eq!(v["changes"][0]["name"], "mail");
}

both!(a_bucket_is_one_artifact);
fn a_bucket_is_one_artifact(db: Db) {
    let Some(s) = Server::start(db) else { return };
    let moto = Moto::start();
    moto.python(
        r#"
s3 = aws('s3')
s3.create_bucket(Bucket='site')
for key, body in [('index.html', '<h1>hi</h1>'), ('assets/app.js', 'run()'), ('logs/today.log', 'noise'), ('assets/', '')]:
    s3.put_object(Bucket='site', Key=key, Body=body.encode())
s3.create_bucket(Bucket='single')
s3.put_object(Bucket='single', Key='releases/v1/app.zip', Body=b'PK zip bytes')
"#,
    );
    // A tree: fingerprinted like the same files on disk.
    s.write("site/index.html", "<h1>hi</h1>");
    s.write("site/assets/app.js", "run()");
    let want = s
        .custody()
        .run(&[
            "fingerprint",
            s.path("site").to_str().unwrap(),
            "--artifact-type",
            "dir",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    let r = custody(
        &s,
        &moto,
        &[
            "snapshot",
            "s3",
            "web",
            "--bucket",
            "site",
            "--exclude",
            "/logs",
            "-A",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let snap = snapshot(&s, "web");
    assert_eq!(snap["artifacts"][0]["name"], "site");
    assert_eq!(snap["artifacts"][0]["fingerprint"], want.as_str());
    assert_eq!(snap["artifacts"][0]["instances"][0]["id"], "s3://site");

    // A single file, however deep: named after it, its SHA-256.
    let r = custody(
        &s,
        &moto,
        &["snapshot", "s3", "rel", "--bucket", "single", "-A"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let snap = snapshot(&s, "rel");
    assert_eq!(snap["artifacts"][0]["name"], "app.zip");
    use sha2::Digest;
    assert_eq!(
        snap["artifacts"][0]["fingerprint"],
        hex::encode(sha2::Sha256::digest(b"PK zip bytes")).as_str()
    );

    custody(
        &s,
        &moto,
        &[
            "snapshot",
            "s3",
            "web",
            "--bucket",
            "site",
            "--include-regex",
            "^nothing",
        ],
    )
    .fails(2, "no matching file or dirs in bucket: [site]");
    custody(
        &s,
        &moto,
        &[
            "snapshot", "s3", "web", "--bucket", "site", "-i", "a", "-x", "b",
        ],
    )
    .fails(2, "cannot combine '--include' with '--exclude'");
}

both!(an_unreachable_aws_endpoint_is_named_and_exits_3);
fn an_unreachable_aws_endpoint_is_named_and_exits_3(db: Db) {
    let Some(s) = Server::start(db) else { return };
    for kind in ["ecs", "lambda"] {
        s.custody()
            .run(&["create", "environment", kind, "--type", kind])
            .ok();
        let out = s
            .custody()
            .command()
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .args([
                "snapshot",
                kind,
                kind,
                "--aws-endpoint-url",
                "http://127.0.0.1:9",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{kind}: {stderr}");
        assert!(stderr.contains("http://127.0.0.1:9"), "{kind}: {stderr}");
    }
    // With --auto-environment, a reporter that observed nothing creates
    // nothing: no empty environment per failed try.
    for kind in ["ecs", "lambda", "s3"] {
        let env = format!("auto-{kind}");
        let mut args = vec![
            "snapshot",
            kind,
            &env,
            "-A",
            "--aws-endpoint-url",
            "http://127.0.0.1:9",
        ];
        if kind == "s3" {
            args.extend(["--bucket", "b"]);
        }
        let out = s
            .custody()
            .command()
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .args(&args)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{kind}");
        s.custody()
            .run(&["get", "environment", &env])
            .fails(2, "does not exist");
    }
}
