//! Listing a repository's tags (`GET /v2/<name>/tags/list`), every page.
//!
//! The distribution spec ("Listing Tags") pages the answer with `n` and `last` and says
//! where the next page is in a `Link: <url>; rel="next"` header (RFC 8288); distribution
//! 2.8 sends the whole list at once, Quay, Harbor and GHCR page it. A repository the
//! registry does not know is a 404 (`NAME_UNKNOWN`); distribution answers `"tags": null`
//! for a repository without tags.

use crate::auth::Scopes;
use crate::client::{check_repository, Client};
use crate::endpoint::join_location;
use crate::error::{RegistryError, Result};
use crate::transport::Request;

/// The largest page read (this client's policy): 10^5 tags of 80 characters. A registry
/// that sends more is refused rather than allowed to fill memory.
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// The most pages followed for one repository: a registry whose `Link` never ends (or
/// loops) is refused, not followed for ever.
const MAX_PAGES: usize = 1000;

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Client {
    /// `GET /v2/<repo>/tags/list` and every page its `Link` names: the repository's tags,
    /// in the registry's order, or `None` when the registry does not know the repository.
    pub fn list_tags(&self, repo: &str) -> Result<Option<Vec<String>>> {
        check_repository(repo)?;
        let scopes = Scopes::pull(repo);
        let first = self.url(&format!("/v2/{repo}/tags/list"));
        let mut url = first.clone();
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut req = Request::new("GET", url, Some(scopes.clone()));
            req.max_body = MAX_PAGE_BYTES + 1;
            let resp = self.transport.exchange(&mut req)?;
            match resp.status {
                200 => {}
                404 => return Ok(None),
                _ => return Err(self.transport.error_from(&resp, Some(&scopes))),
            }
            if resp.body.len() > MAX_PAGE_BYTES {
                return Err(resp.protocol(&format!(
                    "the tag list is larger than {MAX_PAGE_BYTES} bytes a page"
                )));
            }
            let page: Page = serde_json::from_slice(&resp.body)
                .map_err(|e| resp.protocol(&format!("the tag list is not the spec's JSON: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            let next = match resp.header("link").and_then(next_link) {
                None => return Ok(Some(tags)),
                Some(next) => next,
            };
            url = join_location(&resp.url, next)
                .filter(|u| self.transport.is_registry(u))
                .ok_or_else(|| {
                    resp.protocol(&format!(
                        "its Link {next:?} does not name a page on this registry"
                    ))
                })?;
        }
        Err(RegistryError::Protocol {
            method: "GET".into(),
            url: crate::endpoint::display_url(&first),
            status: 200,
            problem: format!("its tag list goes on past {MAX_PAGES} pages"),
        })
    }
}

/// The target of the `rel="next"` link of a `Link` header (RFC 8288: `<uri>; rel="next"`,
/// several links separated by commas, `rel` unquoted or quoted, possibly among other
/// relation types).
fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then_some(target)
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn the_next_link_is_found_among_others_quoted_or_not() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link("<https://r/v2/a/tags/list?last=b>;rel=next"),
            Some("https://r/v2/a/tags/list?last=b")
        );
        assert_eq!(
            next_link(r#"</first>; rel="prev", </second>; rel="last next""#),
            Some("/second")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(""), None);
    }
}
