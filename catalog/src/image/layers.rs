//! What a layer holds, seen through its tar headers: files under the catalog path, under
//! opm's cache directory, and anything else (whiteouts count as what they remove).
