//! Distribution API client (issue 3).
