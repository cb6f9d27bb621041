//! Environment policies: what may run in an environment.
//!
//! [`policy`] reads Kosli's policy v1 YAML into typed rules; [`expr`] is the
//! `${{ ... }}` expression language of its conditions.
//!
//! Architecture invariant: no I/O. Whether a control named by a policy
//! exists, and the facts about running artifacts, come from the caller.

pub mod evaluate;
pub mod expr;
pub mod policy;
pub mod rego;

pub use evaluate::{ArtifactFacts, ArtifactVerdict, AttestationFact, RuleResult, TrailFacts};
pub use expr::{Context, Expr, ExprError};
pub use policy::{AttestationRule, BooleanRule, Policy, PolicyError};
