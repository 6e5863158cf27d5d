//! A future that is polled only when its own waker fired. A loop that `select!`s on a rarely
//! ready future (shutdown) next to busy ones (deliveries) polls every branch on every pass; a
//! watch's `wait_for` takes a lock at each poll, and the shutdown watch is one lock shared by
//! every connection of the process. Wrapped in this, a pass where it was not woken costs an
//! atomic swap and a lock-free waker registration.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
};

use futures_util::task::AtomicWaker;

/// `inner`, polled only after it asked to be (see the module documentation).
pub fn when_woken<F: Future>(inner: F) -> WhenWoken<F> {
    let flag = Arc::new(Flag {
        // The first poll always reaches `inner`, so that it can register.
        woken: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    WhenWoken {
        inner: Box::pin(inner),
        waker: Waker::from(flag.clone()),
        flag,
    }
}

pub struct WhenWoken<F> {
    inner: Pin<Box<F>>,
    flag: Arc<Flag>,
    /// The waker `inner` is polled with: it raises the flag, then wakes the task.
    waker: Waker,
}

struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        this.flag.task.register(cx.waker());
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::watch;

    #[tokio::test]
    async fn completes_once_what_it_waits_for_happens() {
        let (tx, mut rx) = watch::channel(false);
        let waiting = tokio::spawn(when_woken(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        tx.send_replace(true);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting)
            .await
            .expect("woken")
            .expect("no panic");
    }
}
