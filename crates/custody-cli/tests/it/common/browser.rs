//! A real headless Chromium, driven through chromedriver over WebDriver
//! (fantoccini), for the web UI's tests; axe-core checks each page's
//! accessibility in that browser.
//!
//! Chromium, chromedriver and axe-core are installed by `scripts/test`;
//! without them these tests are skipped, unless CUSTODY_REQUIRE_TOOLS says
//! they must run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub struct Browser {
    driver: Child,
    _profile: tempfile::TempDir,
    pub client: Client,
    axe: String,
}

fn tool(var: &str, default: &str) -> Option<PathBuf> {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| default.into());
    p.exists().then_some(p)
}

fn required() -> bool {
    std::env::var_os("CUSTODY_REQUIRE_TOOLS").is_some()
}

/// Where screenshots go: the test output, kept after the run to be looked at.
pub fn screenshot_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A fresh browser (new profile, no cookies), or None when the tools
    /// are not installed and not required.
    pub async fn start() -> Option<Browser> {
        let chromium = tool("CUSTODY_TEST_CHROMIUM", "/usr/bin/chromium");
        let driver = tool("CUSTODY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let axe = std::env::var_os("CUSTODY_TEST_AXE")
            .map(PathBuf::from)
            .or_else(|| {
                let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/axe/node_modules/axe-core/axe.min.js");
                p.exists().then_some(p)
            });
        let (Some(chromium), Some(driver), Some(axe)) = (chromium, driver, axe) else {
            assert!(
                !required(),
                "the web UI tests need chromium, chromedriver and axe-core (scripts/test installs them)"
            );
            eprintln!("skipping: chromium, chromedriver or axe-core is missing");
            return None;
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("cannot start a Chromium session through chromedriver");
        Some(Browser {
            driver: child,
            _profile: profile,
            client,
            axe: std::fs::read_to_string(axe).unwrap(),
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Waits (10 s at most) for an element to be on the page.
    pub async fn wait_for(&self, css: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no '{css}' on the page: {e}"));
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    /// The text of each row of a table (by caption), cells joined by " | ".
    pub async fn rows(&self, caption: &str) -> Vec<String> {
        let script = r#"
            const want = arguments[0];
            for (const t of document.querySelectorAll('table')) {
              const c = t.querySelector('caption');
              if (c && c.innerText.trim().startsWith(want)) {
                return [...t.querySelectorAll('tbody tr')].map(tr =>
                  [...tr.children].map(td => td.innerText.trim()).join(' | '));
              }
            }
            return null;"#;
        let v = self
            .client
            .execute(script, vec![json!(caption)])
            .await
            .unwrap();
        let rows = v
            .as_array()
            .unwrap_or_else(|| panic!("no table captioned '{caption}'"));
        rows.iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    }

    pub async fn shot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let p = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&p, png).unwrap();
        p
    }

    /// A screenshot of the whole page, however long.
    pub async fn full_shot(&self, name: &str) -> PathBuf {
        let h = self
            .js("return Math.min(document.documentElement.scrollHeight, 6000)")
            .await
            .as_u64()
            .unwrap_or(900);
        let w = self
            .js("return window.outerWidth")
            .await
            .as_u64()
            .unwrap_or(1280);
        self.client
            .set_window_size(w as u32, h.max(600) as u32 + 120)
            .await
            .unwrap();
        let p = self.shot(name).await;
        self.client.set_window_size(w as u32, 900).await.unwrap();
        p
    }

    /// axe-core's serious and critical violations on the current page.
    pub async fn axe_violations(&self) -> Vec<String> {
        self.client.execute(&self.axe, vec![]).await.unwrap();
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done(r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                     v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))
              .catch(e => done(['axe failed: ' + e]));"#;
        let v = self.client.execute_async(script, vec![]).await.unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    }

    /// Whether the page needs scrolling sideways at the current width
    /// (tables may scroll inside their own box; the page must not).
    pub async fn overflows_sideways(&self) -> bool {
        self.js("return document.documentElement.scrollWidth > window.innerWidth + 1")
            .await
            .as_bool()
            .unwrap()
    }

    /// The elements that stick out of the viewport on the right (the
    /// deepest ones), to say what makes a page too wide.
    pub async fn too_wide(&self) -> Vec<String> {
        let v = self
            .js(r#"
                const w = window.innerWidth, out = [];
                for (const e of document.querySelectorAll('body *')) {
                  const r = e.getBoundingClientRect();
                  if (r.right > w + 1 && ![...e.children].some(c => c.getBoundingClientRect().right > w + 1)
                      && !e.closest('.table-wrap, .chart, pre')) {
                    out.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ': ' + (e.innerText || '').slice(0, 60));
                  }
                }
                return out.slice(0, 10);"#)
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|c| c.value().to_string())
    }

    /// Ends the session; dropping the browser stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
