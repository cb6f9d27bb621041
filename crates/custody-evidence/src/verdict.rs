use serde::{Deserialize, Serialize};

/// A compliance verdict and, when non-compliant, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub compliant: bool,
    pub reasons: Vec<String>,
}

impl Verdict {
    /// Compliant iff there is nothing to say against it.
    pub fn from_reasons(reasons: Vec<String>) -> Self {
        Verdict {
            compliant: reasons.is_empty(),
            reasons,
        }
    }
}
