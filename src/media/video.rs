//! The MP4 writer: H.264 (libx264, yuv420p, CRF) and AAC in one fragmented MP4, 25 fps, fed
//! block by block. Every `write_frames` call ends with a flushed fragment, so whatever has been
//! written survives a crash or a kill as a playable file; a writer dropped without `finish`
//! still completes the file.
//!
//! This talks to FFmpeg through `ffmpeg-next` directly rather than through `video-rs`: video-rs
//! has no audio API and owns its own muxer, and both streams must share one output context.

use std::path::{Path, PathBuf};
use std::sync::Once;

use ff::{Dictionary, Rational, codec, encoder, format, frame, software};
use ffmpeg_next as ff;

use crate::settings::FPS;

use super::error::MediaError;
use super::frame::{FrameSink, RgbFrame, check_frame};
use super::output_path::check_output_file;
use super::soundtrack::{OUTPUT_SAMPLE_RATE, Soundtrack, samples_for_frames};

/// AAC bit rate of the reference's mux (`-b:a 192k`).
const AUDIO_BIT_RATE: usize = 192_000;
/// A keyframe every two seconds keeps seeking in players quick.
const KEYFRAME_INTERVAL: u32 = 2 * FPS;

/// What the MP4 holds besides its frames.
#[derive(Debug, Clone, Default)]
pub struct Mp4Options {
    /// H.264 constant rate factor (0–51).
    pub crf: u8,
    /// Written as the file's `title` metadata.
    pub title: Option<String>,
    pub soundtrack: Option<Soundtrack>,
}

struct AudioTrack {
    encoder: encoder::Audio,
    stream_index: usize,
    frame_size: usize,
    soundtrack: Soundtrack,
    samples_sent: u64,
}

/// An MP4 being written. Frames must all have the size given to [`Mp4Writer::create`].
pub struct Mp4Writer {
    path: PathBuf,
    output: format::context::Output,
    video: encoder::Video,
    video_stream_index: usize,
    scaler: software::scaling::Context,
    rgb: frame::Video,
    yuv: frame::Video,
    audio: Option<AudioTrack>,
    width: u32,
    height: u32,
    frames: u64,
    finished: bool,
}

fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Only failures are worth a line in our logs; libx264's banner is not.
        if ff::init().is_ok() {
            ff::log::set_level(ff::log::Level::Error);
        }
    });
}

impl Mp4Writer {
    /// Opens `path` for `width × height` frames (both even) and writes the header.
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        options: Mp4Options,
    ) -> Result<Self, MediaError> {
        check_output_file(path)?;
        let fail = |detail: String| MediaError::Encode {
            path: path.to_path_buf(),
            detail,
        };
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(fail(format!(
                "{width}×{height} cannot be stored as yuv420p; both sides must be even"
            )));
        }
        if options.crf > 51 {
            return Err(fail(format!("CRF {} is out of range 0–51", options.crf)));
        }
        init_ffmpeg();
        let mut output = format::output_as(path, "mp4")
            .map_err(|e| fail(format!("cannot create the file: {e}")))?;
        let global_header = output
            .format()
            .flags()
            .contains(format::Flags::GLOBAL_HEADER);

        let h264 = encoder::find_by_name("libx264")
            .or_else(|| encoder::find(codec::Id::H264))
            .ok_or_else(|| fail("this FFmpeg has no H.264 encoder; install libx264".into()))?;
        let video_stream_index = output
            .add_stream(h264)
            .map_err(|e| fail(e.to_string()))?
            .index();
        let mut video = codec::context::Context::new_with_codec(h264)
            .encoder()
            .video()
            .map_err(|e| fail(e.to_string()))?;
        video.set_width(width);
        video.set_height(height);
        video.set_format(format::Pixel::YUV420P);
        video.set_time_base(Rational::new(1, FPS as i32));
        video.set_frame_rate(Some(Rational::new(FPS as i32, 1)));
        video.set_gop(KEYFRAME_INTERVAL);
        if global_header {
            video.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut x264 = Dictionary::new();
        x264.set("crf", &options.crf.to_string());
        x264.set("preset", "medium");
        // No lookahead and no B-frames: each frame's packet leaves the encoder at once, so a
        // flushed fragment really holds every frame written so far.
        x264.set("tune", "zerolatency");
        let video = video
            .open_as_with(h264, x264)
            .map_err(|e| fail(format!("cannot open the H.264 encoder: {e}")))?;
        output
            .stream_mut(video_stream_index)
            .ok_or_else(|| fail("video stream vanished".into()))?
            .set_parameters(&video);

        let audio = match options.soundtrack {
            Some(soundtrack) => Some(Self::add_audio(
                &mut output,
                global_header,
                soundtrack,
                &fail,
            )?),
            None => None,
        };

        if let Some(title) = &options.title {
            let mut metadata = Dictionary::new();
            metadata.set("title", title);
            output.set_metadata(metadata);
        }
        let mut mov_flags = Dictionary::new();
        mov_flags.set("movflags", "frag_custom+empty_moov+default_base_moof");
        output
            .write_header_with(mov_flags)
            .map_err(|e| fail(format!("cannot write the MP4 header: {e}")))?;

        let scaler = software::scaling::Context::get(
            format::Pixel::RGB24,
            width,
            height,
            format::Pixel::YUV420P,
            width,
            height,
            software::scaling::Flags::BILINEAR,
        )
        .map_err(|e| fail(format!("cannot set up colour conversion: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            output,
            video,
            video_stream_index,
            scaler,
            rgb: frame::Video::new(format::Pixel::RGB24, width, height),
            yuv: frame::Video::new(format::Pixel::YUV420P, width, height),
            audio,
            width,
            height,
            frames: 0,
            finished: false,
        })
    }

    fn add_audio(
        output: &mut format::context::Output,
        global_header: bool,
        soundtrack: Soundtrack,
        fail: &dyn Fn(String) -> MediaError,
    ) -> Result<AudioTrack, MediaError> {
        let aac = encoder::find(codec::Id::AAC)
            .ok_or_else(|| fail("this FFmpeg has no AAC encoder".into()))?;
        let stream_index = output
            .add_stream(aac)
            .map_err(|e| fail(e.to_string()))?
            .index();
        let mut audio = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(|e| fail(e.to_string()))?;
        audio.set_rate(OUTPUT_SAMPLE_RATE as i32);
        audio.set_channel_layout(ff::ChannelLayout::MONO);
        audio.set_channels(1);
        audio.set_format(format::Sample::F32(format::sample::Type::Planar));
        audio.set_bit_rate(AUDIO_BIT_RATE);
        audio.set_time_base(Rational::new(1, OUTPUT_SAMPLE_RATE as i32));
        if global_header {
            audio.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = audio
            .open_as(aac)
            .map_err(|e| fail(format!("cannot open the AAC encoder: {e}")))?;
        output
            .stream_mut(stream_index)
            .ok_or_else(|| fail("audio stream vanished".into()))?
            .set_parameters(&encoder);
        let frame_size = (encoder.frame_size() as usize).max(1);
        // SAFETY: reading a plain integer field of the opened codec context we own.
        let priming = unsafe { (*encoder.as_ptr()).initial_padding }.max(0) as u64;
        Ok(AudioTrack {
            encoder,
            stream_index,
            frame_size,
            soundtrack,
            // AAC decoders play `priming` samples of encoder delay before the first real one,
            // and a fragmented MP4 has no edit list to hide them. Starting the track at that
            // sample keeps every packet timestamp non-negative (a negative one makes the muxer
            // stretch the first video frame) and keeps sample t·48 000 at video time t.
            samples_sent: priming,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, detail: impl Into<String>) -> MediaError {
        MediaError::Encode {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn encode_frame(&mut self, frame: &RgbFrame) -> Result<(), MediaError> {
        let row = 3 * self.width as usize;
        let stride = self.rgb.stride(0);
        let data = self.rgb.data_mut(0);
        for (y, src) in frame.rgb.chunks_exact(row).enumerate() {
            data[y * stride..y * stride + row].copy_from_slice(src);
        }
        self.scaler
            .run(&self.rgb, &mut self.yuv)
            .map_err(|e| MediaError::Encode {
                path: self.path.clone(),
                detail: format!("colour conversion: {e}"),
            })?;
        self.yuv.set_pts(Some(self.frames as i64));
        self.video
            .send_frame(&self.yuv)
            .map_err(|e| self.fail(format!("H.264 encoder refused frame {}: {e}", self.frames)))?;
        self.frames += 1;
        self.drain_video()
    }

    fn drain_video(&mut self) -> Result<(), MediaError> {
        let stream_tb = self.stream_time_base(self.video_stream_index)?;
        let mut packet = ff::Packet::empty();
        while self.video.receive_packet(&mut packet).is_ok() {
            packet.set_stream(self.video_stream_index);
            packet.set_duration(1);
            packet.rescale_ts(Rational::new(1, FPS as i32), stream_tb);
            packet
                .write_interleaved(&mut self.output)
                .map_err(|e| MediaError::Encode {
                    path: self.path.clone(),
                    detail: format!("writing video: {e}"),
                })?;
        }
        Ok(())
    }

    fn stream_time_base(&self, index: usize) -> Result<Rational, MediaError> {
        self.output
            .stream(index)
            .map(|s| s.time_base())
            .ok_or_else(|| self.fail("stream vanished"))
    }

    /// Sends audio up to the end of the frames written so far, in whole AAC frames unless
    /// `final_partial` allows the short last one.
    fn feed_audio(&mut self, final_partial: bool) -> Result<(), MediaError> {
        let target = samples_for_frames(self.frames);
        let Some(track) = self.audio.as_mut() else {
            return Ok(());
        };
        let stream_tb = self
            .output
            .stream(track.stream_index)
            .map(|s| s.time_base())
            .ok_or_else(|| MediaError::Encode {
                path: self.path.clone(),
                detail: "audio stream vanished".into(),
            })?;
        loop {
            let left = target.saturating_sub(track.samples_sent) as usize;
            let count = if left >= track.frame_size {
                track.frame_size
            } else if final_partial && left > 0 {
                left
            } else {
                break;
            };
            let mut samples = frame::Audio::new(
                format::Sample::F32(format::sample::Type::Planar),
                count,
                ff::ChannelLayout::MONO,
            );
            samples.set_rate(OUTPUT_SAMPLE_RATE);
            let span = track
                .soundtrack
                .span(track.samples_sent, track.samples_sent + count as u64);
            samples.plane_mut::<f32>(0)[..count].copy_from_slice(&span);
            samples.set_pts(Some(track.samples_sent as i64));
            track
                .encoder
                .send_frame(&samples)
                .map_err(|e| MediaError::Encode {
                    path: self.path.clone(),
                    detail: format!("AAC encoder refused audio: {e}"),
                })?;
            track.samples_sent += count as u64;
            Self::drain_audio(&mut self.output, track, stream_tb, &self.path)?;
        }
        Ok(())
    }

    fn drain_audio(
        output: &mut format::context::Output,
        track: &mut AudioTrack,
        stream_tb: Rational,
        path: &Path,
    ) -> Result<(), MediaError> {
        let mut packet = ff::Packet::empty();
        while track.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(track.stream_index);
            packet.rescale_ts(Rational::new(1, OUTPUT_SAMPLE_RATE as i32), stream_tb);
            packet
                .write_interleaved(output)
                .map_err(|e| MediaError::Encode {
                    path: path.to_path_buf(),
                    detail: format!("writing audio: {e}"),
                })?;
        }
        Ok(())
    }

    /// Pushes everything buffered in the muxer to the file as a complete fragment.
    fn flush_fragment(&mut self) -> Result<(), MediaError> {
        // SAFETY: `output` owns a valid, opened AVFormatContext whose header was written; a
        // null packet is the documented way to flush the interleaving queue and, for the mov
        // muxer with `frag_custom`, to close the current fragment.
        let status = unsafe {
            let ctx = self.output.as_mut_ptr();
            let queued = ff::ffi::av_interleaved_write_frame(ctx, std::ptr::null_mut());
            if queued < 0 {
                queued
            } else {
                let fragment = ff::ffi::av_write_frame(ctx, std::ptr::null_mut());
                if !(*ctx).pb.is_null() {
                    ff::ffi::avio_flush((*ctx).pb);
                }
                fragment.min(0)
            }
        };
        if status < 0 {
            return Err(self.fail(format!("flushing: {}", ff::Error::from(status))));
        }
        Ok(())
    }

    fn complete(&mut self) -> Result<(), MediaError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.feed_audio(true)?;
        self.video
            .send_eof()
            .map_err(|e| self.fail(format!("closing H.264: {e}")))?;
        self.drain_video()?;
        if let Some(track) = self.audio.as_mut() {
            track.encoder.send_eof().map_err(|e| MediaError::Encode {
                path: self.path.clone(),
                detail: format!("closing AAC: {e}"),
            })?;
            let stream_tb = self
                .output
                .stream(track.stream_index)
                .map(|s| s.time_base())
                .unwrap_or(Rational::new(1, OUTPUT_SAMPLE_RATE as i32));
            Self::drain_audio(&mut self.output, track, stream_tb, &self.path)?;
        }
        self.output
            .write_trailer()
            .map_err(|e| self.fail(format!("writing the MP4 trailer: {e}")))
    }
}

impl FrameSink for Mp4Writer {
    fn write_frames(&mut self, frames: &[RgbFrame]) -> Result<(), MediaError> {
        if self.finished {
            return Err(self.fail("the file is already finished"));
        }
        for frame in frames {
            check_frame(frame, self.frames, self.width, self.height)?;
            self.encode_frame(frame)?;
        }
        self.feed_audio(false)?;
        self.flush_fragment()
    }

    fn frames_written(&self) -> u64 {
        self.frames
    }

    fn finish(mut self: Box<Self>) -> Result<PathBuf, MediaError> {
        self.complete()?;
        Ok(self.path.clone())
    }
}

impl Drop for Mp4Writer {
    /// A render that fails or is cancelled drops its writer: complete the file anyway so it
    /// carries a proper end, on top of the fragments already on disk.
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = self.complete()
        {
            tracing::warn!("{e}");
        }
    }
}
