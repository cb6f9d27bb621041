//! The ledger's Merkle tree as the store keeps it: the root it maintains at
//! write time is the RFC 6962 root of the leaves; proofs read from stored
//! nodes verify at every size; checkpoints are kept with their
//! cosignatures; a ledger written before trees existed gets its tree built
//! when the store opens.

use crate::common;

use common::admin;
use custody_ledger::merkle::{Frontier, Hash, verify_consistency, verify_inclusion};
use custody_store::Store;

async fn leaves(s: &Store) -> Vec<Hash> {
    s.ledger_entries("default", 0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.leaf_hash.try_into().unwrap())
        .collect()
}

fn root_of(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l, |_, _| {});
    }
    f.root()
}

/// Enough writes to cross the stored levels 4 and 8.
async fn grow(s: &Store, n: usize) {
    let p = admin(s).await;
    for i in 0..n {
        s.put_flow(&p, &format!("f{i}"), None, None).await.unwrap();
    }
}

async fn check_proofs(s: &Store) {
    let all = leaves(s).await;
    let head = s.tree_head("default").await.unwrap();
    assert_eq!(head.size, all.len() as u64);
    assert_eq!(head.root, root_of(&all));
    let size = head.size;
    for tree_size in [1, 2, 15, 16, 17, 255, 256, 257, size] {
        if tree_size > size {
            continue;
        }
        let root = s.tree_root_at("default", tree_size).await.unwrap();
        assert_eq!(
            root,
            root_of(&all[..tree_size as usize]),
            "size {tree_size}"
        );
        let mut seqs = vec![
            0,
            1,
            tree_size / 2,
            tree_size.saturating_sub(2),
            tree_size - 1,
        ];
        seqs.retain(|s| *s < tree_size);
        for seq in seqs {
            let (ts, leaf, proof) = s
                .inclusion_proof("default", seq, Some(tree_size))
                .await
                .unwrap();
            assert_eq!((ts, leaf), (tree_size, all[seq as usize]));
            verify_inclusion(seq, tree_size, &leaf, &proof, &root).unwrap();
        }
        let (new, proof) = s
            .consistency_proof("default", tree_size, None)
            .await
            .unwrap();
        assert_eq!(new, size);
        verify_consistency(tree_size, size, &root, &head.root, &proof).unwrap();
    }
    assert_eq!(s.seq_of_leaf("default", &all[7]).await.unwrap(), 7);
    assert!(s.inclusion_proof("default", size, None).await.is_err());
    assert!(
        s.consistency_proof("default", size + 1, None)
            .await
            .is_err()
    );
}

both!(the_tree_follows_the_ledger);
async fn the_tree_follows_the_ledger(s: Store) {
    grow(&s, 300).await;
    check_proofs(&s).await;
}

both!(checkpoints_are_kept_with_their_cosignatures);
async fn checkpoints_are_kept_with_their_cosignatures(s: Store) {
    grow(&s, 3).await;
    let grown = s.unpublished_trees().await.unwrap();
    assert_eq!(grown.len(), 1);
    let u = &grown[0];
    assert!(s.checkpoint("default", None).await.unwrap().is_none());
    assert!(
        s.save_checkpoint(u.org_id, &u.head, "note\n\n— x AAAA\n")
            .await
            .unwrap()
    );
    // Another replica signing the same size keeps the first.
    assert!(
        !s.save_checkpoint(u.org_id, &u.head, "other\n")
            .await
            .unwrap()
    );
    assert!(s.unpublished_trees().await.unwrap().is_empty());
    s.add_cosignature(u.org_id, u.head.size, "w1", "— w1 BBBB\n")
        .await
        .unwrap();
    let cp = s.checkpoint("default", None).await.unwrap().unwrap();
    assert_eq!(cp.size, u.head.size);
    assert_eq!(cp.root, u.head.root);
    assert_eq!(cp.cosigned_note(), "note\n\n— x AAAA\n— w1 BBBB\n");
    assert_eq!(
        s.last_cosigned(u.org_id, "w1").await.unwrap(),
        Some(u.head.size)
    );
    assert_eq!(s.last_cosigned(u.org_id, "w2").await.unwrap(), None);
    grow_more(&s).await;
    assert_eq!(s.unpublished_trees().await.unwrap().len(), 1);
    assert_eq!(s.checkpoints("default").await.unwrap().len(), 1);
}

async fn grow_more(s: &Store) {
    let p = s.authenticate(&[1; 32]).await.unwrap().unwrap();
    s.put_flow(&p, "later", None, None).await.unwrap();
}

/// A ledger from before trees were kept: its frontier is empty and it has
/// no nodes. Opening the store builds them, to the same root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_without_a_tree_gets_one_at_open() {
    let (s, dir) = common::sqlite().await;
    grow(&s, 40).await;
    let before = s.tree_head("default").await.unwrap();
    s.close().await;
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE ledger_heads SET frontier = NULL")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM merkle_nodes")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let s = Store::open(&url).await.unwrap();
    assert_eq!(s.tree_head("default").await.unwrap(), before);
    check_proofs(&s).await;
}
