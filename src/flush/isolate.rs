//! Panic isolation for the flusher: a bug that panics in one flush (an encoder edge case, a
//! bad value we did not foresee) costs that flush, never the exporter.
//!
//! `std::panic::catch_unwind` for a future, without boxing it (a warm flush allocates
//! nothing) and without `unsafe`: the future is pinned on the caller's stack, and
//! `Pin<&mut F>` is `Unpin`, so this wrapper needs no pin projection.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls the inner future, turning a panic into `Err(message)`.
#[derive(Debug)]
pub(crate) struct CatchPanic<'a, F>(pub(crate) Pin<&'a mut F>);

impl<F: Future> Future for CatchPanic<'_, F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.get_mut().0;
        // AssertUnwindSafe: after a panic the flusher resets its per-flush state (the payload
        // writer) before the next flush; everything else it owns is left consistent by
        // construction (cells are atomics, lists are only appended to or retained).
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(payload) => Poll::Ready(Err(message(payload.as_ref()))),
        }
    }
}

/// The text of a panic payload (a `&str` or `String` for `panic!` with a message).
fn message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_inside_the_future_becomes_an_error_with_its_message() {
        let mut fut = std::pin::pin!(async {
            tokio::task::yield_now().await;
            assert!(std::hint::black_box(false), "injected: {}", 42);
            1
        });
        assert_eq!(
            CatchPanic(fut.as_mut()).await,
            Err("injected: 42".to_owned())
        );
        let mut fine = std::pin::pin!(async { 7 });
        assert_eq!(CatchPanic(fine.as_mut()).await, Ok(7));
    }
}
