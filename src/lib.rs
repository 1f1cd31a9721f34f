//! WIP
#![allow(dead_code, unreachable_pub, missing_docs, reason = "wip")]
mod encode;
