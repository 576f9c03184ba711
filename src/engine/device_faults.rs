//! Failures inside the compute backend's own threads. burn-cuda runs GPU work on device threads
//! it names `DSU-…` and `DSD-…`; when a task there panics (above all an allocation the GPU
//! cannot satisfy) it logs a warning and carries on, so the tensors the render reads next hold
//! garbage and nothing tells the caller. A panic hook notes the first such failure, and the
//! engine ends the job with it instead of delivering those frames.

use std::sync::{Mutex, Once};

static FAULT: Mutex<Option<String>> = Mutex::new(None);
static INSTALL: Once = Once::new();

/// Whether a thread of this name is one of the backend's device threads.
pub fn is_device_thread(name: Option<&str>) -> bool {
    name.is_some_and(|n| n.starts_with("DSD-") || n.starts_with("DSU-"))
}

/// Installs the hook (once per process); the panic is still reported as before.
pub fn watch() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if is_device_thread(std::thread::current().name()) {
                let payload = info.payload();
                let message = payload
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| payload.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                if let Ok(mut slot) = FAULT.lock()
                    && slot.is_none()
                {
                    *slot = Some(message.to_string());
                }
            }
            previous(info);
        }));
    });
}

/// The first failure since the last call, if any.
pub fn take() -> Option<String> {
    FAULT.lock().ok().and_then(|mut slot| slot.take())
}

/// The reason a render stops after `fault`, in words a user can act on.
pub fn describe(fault: &str) -> String {
    let cause = if fault.contains("allocate") || fault.contains("memory") {
        "the GPU ran out of memory"
    } else {
        "the GPU failed"
    };
    format!(
        "{cause} during the render ({fault}); the frames after it would be wrong, so the render \
         stops here"
    )
}
