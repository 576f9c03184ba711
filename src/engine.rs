//! The engine: one worker thread that owns the models and the GPU memory, runs jobs from a
//! queue, sends [`Event`]s and takes [`Command`]s. The CLI and the studio are its two thin
//! clients; neither touches a tensor.
//!
//! Cancel takes effect at the next block boundary and keeps what was made (a playable file);
//! pause holds the render at a block boundary until resumed.

pub mod device;
pub mod device_faults;
pub mod events;
pub mod job;
pub mod output;
mod worker;

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

pub use events::{Command, DeviceInfo, Event, JobId, JobPlan, PeakMemory};
pub use job::{Job, OutputTarget};

/// A running engine. Dropping it cancels the running job and ends the worker.
pub struct Engine {
    commands: Sender<Command>,
    events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the worker thread. Nothing is loaded until a job needs it.
    pub fn start() -> std::io::Result<Self> {
        let (command_tx, command_rx) = mpsc::channel();
        let (event_tx, event_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("avatar-engine".into())
            .spawn(move || worker::Worker::new(command_rx, event_tx).run())?;
        Ok(Self {
            commands: command_tx,
            events: event_rx,
            thread: Some(thread),
        })
    }

    /// Sends a command; `false` if the worker has stopped.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Queues a job (its id arrives in the `Queued` event).
    pub fn submit(&self, job: Job) -> bool {
        self.send(Command::Submit(Box::new(job)))
    }

    /// A sender other threads (a Ctrl-C handler, the UI) can keep.
    pub fn commander(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// The next event, waiting at most `timeout`; `None` on timeout or when the worker is gone.
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Every event already waiting.
    pub fn drain_events(&self) -> Vec<Event> {
        self.events.try_iter().collect()
    }

    /// Whether the worker thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
