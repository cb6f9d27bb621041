//! Include or exclude filters over names (namespaces, clusters, services,
//! functions), by exact name or by regular expression, as Kosli's reporters
//! apply them: an include list cannot be combined with an exclude list,
//! regexes match anywhere in the name (unanchored), case matters.

use regex::Regex;

/// The flag or key names the filter came from, for messages.
#[derive(Debug, Clone, Copy)]
pub struct FilterLabels {
    pub include: &'static str,
    pub include_regex: &'static str,
    pub exclude: &'static str,
    pub exclude_regex: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("cannot combine '{include}' with '{exclude}'")]
    Combined {
        include: &'static str,
        exclude: &'static str,
    },
    #[error("invalid regex '{pattern}' in '{label}': {reason}")]
    Regex {
        label: &'static str,
        pattern: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    include: Vec<String>,
    include_regex: Vec<Regex>,
    exclude: Vec<String>,
    exclude_regex: Vec<Regex>,
}

impl NameFilter {
    pub fn new(
        labels: FilterLabels,
        include: Vec<String>,
        include_regex: Vec<String>,
        exclude: Vec<String>,
        exclude_regex: Vec<String>,
    ) -> Result<NameFilter, FilterError> {
        let includes = [
            (!include.is_empty()).then_some(labels.include),
            (!include_regex.is_empty()).then_some(labels.include_regex),
        ];
        let excludes = [
            (!exclude.is_empty()).then_some(labels.exclude),
            (!exclude_regex.is_empty()).then_some(labels.exclude_regex),
        ];
        if let (Some(i), Some(x)) = (
            includes.iter().flatten().next(),
            excludes.iter().flatten().next(),
        ) {
            return Err(FilterError::Combined {
                include: i,
                exclude: x,
            });
        }
        let compile = |label: &'static str, patterns: Vec<String>| {
            patterns
                .into_iter()
                .map(|p| {
                    Regex::new(&p).map_err(|e| FilterError::Regex {
                        label,
                        reason: e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                        pattern: p,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(NameFilter {
            include,
            include_regex: compile(labels.include_regex, include_regex)?,
            exclude,
            exclude_regex: compile(labels.exclude_regex, exclude_regex)?,
        })
    }

    /// Excludes win: a name matching an exclusion is out, anything else is
    /// in. With inclusions, only names matching one are in. With neither,
    /// everything is.
    pub fn matches(&self, name: &str) -> bool {
        if !self.exclude.is_empty() || !self.exclude_regex.is_empty() {
            return !(self.exclude.iter().any(|n| n == name)
                || self.exclude_regex.iter().any(|r| r.is_match(name)));
        }
        if !self.include.is_empty() || !self.include_regex.is_empty() {
            return self.include.iter().any(|n| n == name)
                || self.include_regex.iter().any(|r| r.is_match(name));
        }
        true
    }

    /// When the filter is only a list of exact names: those names, so a
    /// reporter can ask for just them instead of listing everything.
    pub fn exact_names_only(&self) -> Option<&[String]> {
        (!self.include.is_empty()
            && self.include_regex.is_empty()
            && self.exclude.is_empty()
            && self.exclude_regex.is_empty())
        .then_some(&self.include[..])
    }

    pub fn is_everything(&self) -> bool {
        self.include.is_empty()
            && self.include_regex.is_empty()
            && self.exclude.is_empty()
            && self.exclude_regex.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: FilterLabels = FilterLabels {
        include: "--namespaces",
        include_regex: "--namespaces-regex",
        exclude: "--exclude-namespaces",
        exclude_regex: "--exclude-namespaces-regex",
    };

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn semantics() {
        let all = NameFilter::new(L, vec![], vec![], vec![], vec![]).unwrap();
        assert!(all.matches("anything") && all.is_everything());

        let inc = NameFilter::new(L, s(&["prod"]), s(&["^staging-"]), vec![], vec![]).unwrap();
        assert!(inc.matches("prod") && inc.matches("staging-eu"));
        assert!(!inc.matches("production") && !inc.matches("my-staging-eu"));
        assert_eq!(inc.exact_names_only(), None);

        let exact = NameFilter::new(L, s(&["a", "b"]), vec![], vec![], vec![]).unwrap();
        assert_eq!(exact.exact_names_only(), Some(&s(&["a", "b"])[..]));

        // Unanchored and case-sensitive.
        let exc = NameFilter::new(L, vec![], vec![], s(&["default"]), s(&["kube-"])).unwrap();
        assert!(!exc.matches("default") && !exc.matches("kube-system"));
        assert!(!exc.matches("my-kube-thing"));
        assert!(exc.matches("Kube-System") && exc.matches("prod"));
    }

    #[test]
    fn errors_name_the_flags() {
        let e = NameFilter::new(L, vec![], s(&["a"]), s(&["b"]), vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot combine '--namespaces-regex' with '--exclude-namespaces'"
        );
        let e = NameFilter::new(L, vec![], s(&["[invalid"]), vec![], vec![]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid regex '[invalid' in '--namespaces-regex'"),
            "{e}"
        );
    }
}
