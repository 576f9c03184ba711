//! Audio conditioning inside the DiT: the `CausalAudioEncoder` (layer-weighted wav2vec2
//! features → causal conv stack → local and global tokens) and the per-layer audio injector
//! (AdaLN on the global token, then cross-attention to the frame's audio tokens).

use burn::tensor::activation::silu;
use burn::tensor::{Tensor, backend::Backend};

use super::config::DitConfig;
use super::layers::{CausalConv1d, Linear, ParameterSource, RmsNorm, attention, layer_norm};

/// Audio tokens for the latent frames of one streaming call.
#[derive(Debug, Clone)]
pub struct AudioTokens<B: Backend> {
    /// `[frames, num_audio_token + 1, dim]`: local tokens plus the padding token.
    pub local: Tensor<B, 3>,
    /// `[frames, dim]`: the global token driving the AdaLN.
    pub global: Tensor<B, 2>,
}

/// Raw encoder outputs before the motion-prefix rows are dropped (for debugging / parity).
#[derive(Debug, Clone)]
pub struct AudioEncoderOutput<B: Backend> {
    /// `[rows, dim]`
    pub global: Tensor<B, 2>,
    /// `[rows, num_audio_token + 1, dim]`
    pub local: Tensor<B, 3>,
}

#[derive(Debug, Clone)]
pub struct CausalAudioEncoder<B: Backend> {
    /// `[layers]` raw layer weights (SiLU-normalised at use).
    pub layer_weights: Tensor<B, 1>,
    pub conv1_local: CausalConv1d<B>,
    pub conv1_global: CausalConv1d<B>,
    pub conv2: CausalConv1d<B>,
    pub conv3: CausalConv1d<B>,
    pub final_linear: Linear<B>,
    pub padding_token: Tensor<B, 1>,
    pub num_tokens: usize,
    pub eps: f64,
    pub prefix_frames: usize,
    pub dropped_rows: usize,
}

impl<B: Backend> CausalAudioEncoder<B> {
    pub fn load<S: ParameterSource<B>>(src: &S, config: &DitConfig) -> Result<Self, S::Error> {
        let p = "casual_audio_encoder";
        let hidden = config.dim;
        let n = config.num_audio_token;
        let layers = config.audio_encoder_layers;
        Ok(Self {
            layer_weights: src
                .tensor::<4>(&format!("{p}.weights"), [1, layers, 1, 1])?
                .reshape([layers]),
            conv1_local: CausalConv1d::load(
                src,
                &format!("{p}.encoder.conv1_local.conv"),
                config.audio_dim,
                hidden / 4 * n,
                1,
            )?,
            conv1_global: CausalConv1d::load(
                src,
                &format!("{p}.encoder.conv1_global.conv"),
                config.audio_dim,
                hidden / 4,
                1,
            )?,
            conv2: CausalConv1d::load(
                src,
                &format!("{p}.encoder.conv2.conv"),
                hidden / 4,
                hidden / 2,
                2,
            )?,
            conv3: CausalConv1d::load(
                src,
                &format!("{p}.encoder.conv3.conv"),
                hidden / 2,
                hidden,
                2,
            )?,
            final_linear: Linear::load(src, &format!("{p}.encoder.final_linear"), hidden, hidden)?,
            padding_token: src
                .tensor::<4>(&format!("{p}.encoder.padding_tokens"), [1, 1, 1, hidden])?
                .reshape([hidden]),
            num_tokens: n,
            eps: config.audio_encoder_eps,
            prefix_frames: config.motion_frames,
            dropped_rows: config.latent_motion_frames(),
        })
    }

    fn conv_stack(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = silu(layer_norm(self.conv2.forward(x), self.eps));
        silu(layer_norm(self.conv3.forward(x), self.eps))
    }

    /// Runs the encoder on `audio` (`[layers, audio_dim, frames]`, the call's video-frame slots)
    /// after prefixing `motion_frames` copies of its first frame.
    pub fn encode(&self, audio: Tensor<B, 3>) -> AudioEncoderOutput<B> {
        let [layers, audio_dim, _] = audio.dims();
        let first = audio
            .clone()
            .narrow(2, 0, 1)
            .repeat_dim(2, self.prefix_frames);
        let audio = Tensor::cat(vec![first, audio], 2);
        let frames = audio.dims()[2];
        let weights = silu(self.layer_weights.clone());
        let weight_sum = weights.clone().sum();
        let weights = weights.reshape([layers, 1, 1]);
        let weighted = (audio * weights / weight_sum.reshape([1, 1, 1]))
            .sum_dim(0)
            .reshape([audio_dim, frames])
            .transpose();
        // Local path: conv1 splits its channels into `num_tokens` groups of `dim/4`.
        let local = self.conv1_local.forward(weighted.clone().unsqueeze_dim(0));
        let group = local.dims()[2] / self.num_tokens;
        let local = local
            .reshape([frames, self.num_tokens, group])
            .swap_dims(0, 1);
        let local = silu(layer_norm(local, self.eps));
        let local = self.conv_stack(local);
        let [tokens, rows, dim] = local.dims();
        let local = local.swap_dims(0, 1);
        let padding = self
            .padding_token
            .clone()
            .reshape([1, 1, dim])
            .repeat_dim(0, rows);
        let local = Tensor::cat(vec![local, padding], 1);
        debug_assert_eq!(local.dims(), [rows, tokens + 1, dim]);
        // Global path shares conv2 / conv3 and their norms with the local path.
        let global = self.conv1_global.forward(weighted.unsqueeze_dim(0));
        let global = silu(layer_norm(global, self.eps));
        let global = self.conv_stack(global);
        let global = self.final_linear.forward(global).reshape([rows, dim]);
        AudioEncoderOutput { global, local }
    }

    /// Encoder output with the motion-prefix rows dropped: one row per latent frame.
    pub fn tokens(&self, audio: Tensor<B, 3>) -> AudioTokens<B> {
        let out = self.encode(audio);
        let rows = out.global.dims()[0];
        let keep = rows.saturating_sub(self.dropped_rows);
        AudioTokens {
            global: out.global.narrow(0, self.dropped_rows.min(rows), keep),
            local: out.local.narrow(0, self.dropped_rows.min(rows), keep),
        }
    }
}

/// One audio injector: AdaLN from the global token, then cross-attention to the local tokens.
#[derive(Debug, Clone)]
pub struct AudioInjector<B: Backend> {
    pub adain: Linear<B>,
    pub q: Linear<B>,
    pub k: Linear<B>,
    pub v: Linear<B>,
    pub o: Linear<B>,
    pub norm_q: RmsNorm<B>,
    pub norm_k: RmsNorm<B>,
    pub num_heads: usize,
    pub adain_eps: f64,
}

impl<B: Backend> AudioInjector<B> {
    pub fn load<S: ParameterSource<B>>(
        src: &S,
        config: &DitConfig,
        index: usize,
    ) -> Result<Self, S::Error> {
        let d = config.dim;
        let p = format!("audio_injector.injector.{index}");
        Ok(Self {
            adain: Linear::load(
                src,
                &format!("audio_injector.injector_adain_layers.{index}.linear"),
                d,
                2 * d,
            )?,
            q: Linear::load(src, &format!("{p}.q"), d, d)?,
            k: Linear::load(src, &format!("{p}.k"), d, d)?,
            v: Linear::load(src, &format!("{p}.v"), d, d)?,
            o: Linear::load(src, &format!("{p}.o"), d, d)?,
            norm_q: RmsNorm::load(src, &format!("{p}.norm_q"), d, config.eps)?,
            norm_k: RmsNorm::load(src, &format!("{p}.norm_k"), d, config.eps)?,
            num_heads: config.num_heads,
            adain_eps: config.adain_eps,
        })
    }

    /// `x` is `[tokens, dim]` (noisy tokens, frame-major); returns the residual to add.
    pub fn forward(&self, x: Tensor<B, 2>, audio: &AudioTokens<B>) -> Tensor<B, 2> {
        let [tokens, dim] = x.dims();
        let frames = audio.global.dims()[0];
        let per_frame = tokens / frames;
        let hidden = x.reshape([frames, per_frame, dim]);
        let params = self.adain.forward(silu(audio.global.clone()));
        let shift = params.clone().narrow(1, 0, dim).unsqueeze_dim::<3>(1);
        let scale = params.narrow(1, dim, dim).unsqueeze_dim::<3>(1);
        let normed = layer_norm(hidden, self.adain_eps) * (scale + 1.0) + shift;
        let heads = self.num_heads;
        let head_dim = dim / heads;
        let context_len = audio.local.dims()[1];
        let q = self
            .norm_q
            .forward(self.q.forward(normed))
            .reshape([frames, per_frame, heads, head_dim]);
        let k = self
            .norm_k
            .forward(self.k.forward(audio.local.clone()))
            .reshape([frames, context_len, heads, head_dim]);
        let v = self
            .v
            .forward(audio.local.clone())
            .reshape([frames, context_len, heads, head_dim]);
        let out = self.o.forward(attention(q, k, v));
        out.reshape([tokens, dim])
    }
}
