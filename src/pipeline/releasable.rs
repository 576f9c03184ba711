//! A network a render may drop from the device once its stage is over (the memory plan decides
//! when the GPU needs the room), and the engine loads again for the next render that needs it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A network that can be released and loaded again.
pub struct Releasable<T>(Mutex<Option<T>>);

impl<T> Releasable<T> {
    pub fn new(network: T) -> Self {
        Self(Mutex::new(Some(network)))
    }

    fn slot(&self) -> MutexGuard<'_, Option<T>> {
        // The slot holds a whole network or none: a panic elsewhere cannot leave it half-made.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the network; `None` when it has been released.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.slot().as_ref().map(f)
    }

    /// Drops the network (its device memory goes back to the allocator's pool).
    pub fn release(&self) {
        self.slot().take();
    }

    pub fn is_loaded(&self) -> bool {
        self.slot().is_some()
    }

    /// Puts a freshly loaded network back.
    pub fn restore(&self, network: T) {
        *self.slot() = Some(network);
    }
}

impl<T> std::fmt::Debug for Releasable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Releasable")
            .field("loaded", &self.is_loaded())
            .finish()
    }
}
