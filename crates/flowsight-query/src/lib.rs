//! The query layer of flowsight. So far: the nfdump-style filter language ([`filter`]).

pub mod filter;
