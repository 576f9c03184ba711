//! The preview player's sound: plays the render's audio (48 kHz mono, as the engine sends it)
//! under the playhead through rodio, follows play, pause and scrubbing, and appends each new
//! clip's sound as it arrives. Without a sound device the player stays silent and says why once;
//! that is a normal state (a server, a container), not an error dialog.

use std::time::Instant;

use rodio::buffer::SamplesBuffer;
use rodio::mixer::Mixer;
use rodio::{OutputStream, OutputStreamBuilder, Sink};

use super::render_state::Preview;

/// The sample rate of the engine's audio.
const SAMPLE_RATE: u32 = 48_000;
/// The playhead may run this many frames from where the sound is before the sound restarts
/// there (a scrub, or a stall while the render catches up).
const RESYNC_FRAMES: f64 = 3.0;

/// Where the sound is in the preview.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Playhead (frames) when the sound started.
    start_frame: f64,
    started: Instant,
    /// Samples of `Preview::audio` handed to the sink so far.
    queued_until: usize,
}

/// The player's audio output.
pub struct SoundOut {
    /// Kept alive while sound plays; `None` when playing into a mixer the caller owns.
    _stream: Option<OutputStream>,
    /// Where sinks connect, or why there is no sound.
    mixer: Result<Mixer, String>,
    /// The sound now playing. A restart drops it and connects a new one: `Sink::clear` waits
    /// for the audio thread, and the UI thread must never wait.
    sink: Option<Sink>,
    cursor: Option<Cursor>,
    fps: f64,
}

impl SoundOut {
    /// The default sound device, or a silent player that knows why.
    pub fn open_default(fps: f64) -> Self {
        match OutputStreamBuilder::open_default_stream() {
            Ok(mut stream) => {
                stream.log_on_drop(false);
                let mixer = stream.mixer().clone();
                Self {
                    _stream: Some(stream),
                    mixer: Ok(mixer),
                    sink: None,
                    cursor: None,
                    fps,
                }
            }
            Err(e) => Self {
                _stream: None,
                mixer: Err(format!("no sound device ({e})")),
                sink: None,
                cursor: None,
                fps,
            },
        }
    }

    /// Plays into `mixer` (tests read what would reach the speakers from its source).
    pub fn with_mixer(mixer: &Mixer, fps: f64) -> Self {
        Self {
            _stream: None,
            mixer: Ok(mixer.clone()),
            sink: None,
            cursor: None,
            fps,
        }
    }

    /// Why there is no sound, if there is none.
    pub fn unavailable(&self) -> Option<&str> {
        self.mixer.as_ref().err().map(String::as_str)
    }

    /// Whether sound is playing now.
    pub fn is_playing(&self) -> bool {
        self.cursor.is_some()
    }

    /// Brings the sound in line with the player: call once per frame, after the playhead moved.
    pub fn sync(&mut self, preview: &Preview) {
        let Ok(mixer) = &self.mixer else {
            return;
        };
        // Waiting at the newest frame for the render to catch up is silence, not a loop.
        let waiting = preview.position + 1.0 >= preview.end_index() as f64;
        if !preview.playing || preview.is_empty() || waiting {
            self.cursor = None;
            self.sink = None;
            return;
        }
        let samples_per_frame = f64::from(SAMPLE_RATE) / self.fps;
        let in_step = self.cursor.is_some_and(|c| {
            let expected = c.start_frame + c.started.elapsed().as_secs_f64() * self.fps;
            (preview.position - expected).abs() <= RESYNC_FRAMES
        });
        if !in_step {
            let sink = Sink::connect_new(mixer);
            let from =
                ((preview.position.max(0.0) * samples_per_frame) as usize).min(preview.audio.len());
            if from < preview.audio.len() {
                sink.append(SamplesBuffer::new(
                    1,
                    SAMPLE_RATE,
                    preview.audio[from..].to_vec(),
                ));
            }
            self.sink = Some(sink);
            self.cursor = Some(Cursor {
                start_frame: preview.position,
                started: Instant::now(),
                queued_until: preview.audio.len(),
            });
            return;
        }
        if let (Some(cursor), Some(sink)) = (&mut self.cursor, &self.sink)
            && preview.audio.len() > cursor.queued_until
        {
            sink.append(SamplesBuffer::new(
                1,
                SAMPLE_RATE,
                preview.audio[cursor.queued_until..].to_vec(),
            ));
            cursor.queued_until = preview.audio.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::media::frame::RgbFrame;

    /// A preview of `frames` black frames with a ramp as their sound (1920 samples a frame).
    fn preview(frames: usize) -> Preview {
        let mut p = Preview::default();
        for _ in 0..frames {
            p.frames.push_back(Arc::new(RgbFrame {
                width: 2,
                height: 2,
                rgb: vec![0; 12],
            }));
        }
        p.audio = (0..frames * 1920)
            .map(|i| (i % 1000) as f32 / 1000.0 + 0.001)
            .collect();
        p
    }

    /// Pulls `n` samples from what the sink sends to the mixer.
    fn take(source: &mut rodio::mixer::MixerSource, n: usize) -> Vec<f32> {
        source.by_ref().take(n).collect()
    }

    #[test]
    fn plays_the_sound_under_the_playhead_and_follows_pause_and_scrub() {
        let (mixer, mut source) = rodio::mixer::mixer(1, SAMPLE_RATE);
        let mut sound = SoundOut::with_mixer(&mixer, 25.0);
        let mut p = preview(50);
        sound.sync(&p);
        assert!(!sound.is_playing(), "paused: silent");

        // Play from frame 10: the first samples out are those of frame 10.
        p.playing = true;
        p.position = 10.0;
        sound.sync(&p);
        assert!(sound.is_playing());
        let out = take(&mut source, 4000);
        let start = out
            .iter()
            .position(|s| *s != 0.0)
            .expect("sound reaches the mixer");
        let expected = &p.audio[10 * 1920..10 * 1920 + 1000];
        assert_eq!(&out[start..start + 1000], expected);

        // Pause: the sink is dropped and the mixer goes quiet within rodio's 5 ms control
        // period (240 samples).
        p.playing = false;
        sound.sync(&p);
        assert!(!sound.is_playing());
        let quiet = take(&mut source, 2000);
        assert!(quiet.iter().skip(480).all(|s| *s == 0.0));

        // Scrub to frame 30 and play: the sound starts there.
        p.position = 30.0;
        p.playing = true;
        sound.sync(&p);
        let out = take(&mut source, 4000);
        let start = out
            .iter()
            .position(|s| *s != 0.0)
            .expect("sound after the scrub");
        assert_eq!(
            &out[start..start + 500],
            &p.audio[30 * 1920..30 * 1920 + 500]
        );
    }

    #[test]
    fn waiting_at_the_newest_frame_is_silence() {
        let (mixer, _source) = rodio::mixer::mixer(1, SAMPLE_RATE);
        let mut sound = SoundOut::with_mixer(&mixer, 25.0);
        let mut p = preview(5);
        p.playing = true;
        p.position = 4.0;
        sound.sync(&p);
        assert!(!sound.is_playing());
    }

    #[test]
    fn no_device_is_a_state_not_a_crash() {
        let sound = SoundOut {
            _stream: None,
            mixer: Err("no sound device (test)".into()),
            sink: None,
            cursor: None,
            fps: 25.0,
        };
        assert_eq!(sound.unavailable(), Some("no sound device (test)"));
    }
}
