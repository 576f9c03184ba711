//! Key → module map of the encoder-side checkpoints: every tensor the VAE, umT5 and wav2vec2
//! loaders read, with its expected shape and the module it feeds. Used by the inspection
//! reports to say what a file lacks before any model is built.

use crate::model::t5::T5Config;
use crate::model::vae::VaeConfig;
use crate::model::wav2vec::Wav2VecConfig;

/// One tensor a model expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedTensor {
    /// State-dict key.
    pub key: String,
    /// Expected shape, PyTorch order.
    pub shape: Vec<usize>,
    /// The module it belongs to, in words.
    pub module: String,
}

fn push(out: &mut Vec<ExpectedTensor>, key: String, shape: &[usize], module: &str) {
    out.push(ExpectedTensor {
        key,
        shape: shape.to_vec(),
        module: module.to_string(),
    });
}

fn conv3d(out: &mut Vec<ExpectedTensor>, p: &str, i: usize, o: usize, k: [usize; 3], m: &str) {
    push(out, format!("{p}.weight"), &[o, i, k[0], k[1], k[2]], m);
    push(out, format!("{p}.bias"), &[o], m);
}

fn residual(out: &mut Vec<ExpectedTensor>, p: &str, i: usize, o: usize) {
    let m = format!("ResidualBlock({i}→{o})");
    push(out, format!("{p}.residual.0.gamma"), &[i, 1, 1, 1], &m);
    conv3d(out, &format!("{p}.residual.2"), i, o, [3, 3, 3], &m);
    push(out, format!("{p}.residual.3.gamma"), &[o, 1, 1, 1], &m);
    conv3d(out, &format!("{p}.residual.6"), o, o, [3, 3, 3], &m);
    if i != o {
        conv3d(out, &format!("{p}.shortcut"), i, o, [1, 1, 1], &m);
    }
}

fn attention(out: &mut Vec<ExpectedTensor>, p: &str, c: usize) {
    let m = format!("AttentionBlock({c})");
    push(out, format!("{p}.norm.gamma"), &[c, 1, 1], &m);
    push(out, format!("{p}.to_qkv.weight"), &[3 * c, c, 1, 1], &m);
    push(out, format!("{p}.to_qkv.bias"), &[3 * c], &m);
    push(out, format!("{p}.proj.weight"), &[c, c, 1, 1], &m);
    push(out, format!("{p}.proj.bias"), &[c], &m);
}

fn resample(out: &mut Vec<ExpectedTensor>, p: &str, c: usize, up: bool, temporal: bool) {
    let m = match (up, temporal) {
        (true, true) => format!("Resample upsample3d({c})"),
        (true, false) => format!("Resample upsample2d({c})"),
        (false, true) => format!("Resample downsample3d({c})"),
        (false, false) => format!("Resample downsample2d({c})"),
    };
    let o = if up { c / 2 } else { c };
    push(out, format!("{p}.resample.1.weight"), &[o, c, 3, 3], &m);
    push(out, format!("{p}.resample.1.bias"), &[o], &m);
    if temporal {
        let t = if up { 2 * c } else { c };
        conv3d(out, &format!("{p}.time_conv"), c, t, [3, 1, 1], &m);
    }
}

/// Every tensor of a `WanVAE_` state dict for `cfg` (194 for the released configuration).
pub fn vae_keys(cfg: &VaeConfig) -> Vec<ExpectedTensor> {
    let mut out = Vec::new();
    let d = cfg.dim;
    let z = cfg.z_dim;
    let n = cfg.dim_mult.len();
    let enc: Vec<usize> = std::iter::once(1)
        .chain(cfg.dim_mult.iter().copied())
        .map(|m| d * m)
        .collect();
    conv3d(
        &mut out,
        "encoder.conv1",
        3,
        enc[0],
        [3, 3, 3],
        "Encoder conv1",
    );
    let mut idx = 0;
    let mut scale = 1.0f64;
    for i in 0..n {
        let mut in_dim = enc[i];
        let out_dim = enc[i + 1];
        for _ in 0..cfg.num_res_blocks {
            residual(
                &mut out,
                &format!("encoder.downsamples.{idx}"),
                in_dim,
                out_dim,
            );
            idx += 1;
            if cfg.attn_scales.contains(&scale) {
                attention(&mut out, &format!("encoder.downsamples.{idx}"), out_dim);
                idx += 1;
            }
            in_dim = out_dim;
        }
        if i + 1 != n {
            let t = cfg.temperal_downsample.get(i).copied().unwrap_or(false);
            resample(
                &mut out,
                &format!("encoder.downsamples.{idx}"),
                out_dim,
                false,
                t,
            );
            idx += 1;
            scale /= 2.0;
        }
    }
    let top = enc[n];
    residual(&mut out, "encoder.middle.0", top, top);
    attention(&mut out, "encoder.middle.1", top);
    residual(&mut out, "encoder.middle.2", top, top);
    push(
        &mut out,
        "encoder.head.0.gamma".into(),
        &[top, 1, 1, 1],
        "Encoder head",
    );
    conv3d(
        &mut out,
        "encoder.head.2",
        top,
        2 * z,
        [3, 3, 3],
        "Encoder head",
    );
    conv3d(
        &mut out,
        "conv1",
        2 * z,
        2 * z,
        [1, 1, 1],
        "posterior conv1",
    );
    conv3d(&mut out, "conv2", z, z, [1, 1, 1], "latent conv2");

    let last = cfg.dim_mult.last().copied().unwrap_or(1);
    let dec: Vec<usize> = std::iter::once(last)
        .chain(cfg.dim_mult.iter().rev().copied())
        .map(|m| d * m)
        .collect();
    conv3d(
        &mut out,
        "decoder.conv1",
        z,
        dec[0],
        [3, 3, 3],
        "Decoder conv1",
    );
    residual(&mut out, "decoder.middle.0", dec[0], dec[0]);
    attention(&mut out, "decoder.middle.1", dec[0]);
    residual(&mut out, "decoder.middle.2", dec[0], dec[0]);
    let ups: Vec<bool> = cfg.temperal_downsample.iter().rev().copied().collect();
    let mut idx = 0;
    let mut scale = 1.0 / 2f64.powi(n as i32 - 2);
    for i in 0..n {
        let mut in_dim = if (1..=3).contains(&i) {
            dec[i] / 2
        } else {
            dec[i]
        };
        let out_dim = dec[i + 1];
        for _ in 0..cfg.num_res_blocks + 1 {
            residual(
                &mut out,
                &format!("decoder.upsamples.{idx}"),
                in_dim,
                out_dim,
            );
            idx += 1;
            if cfg.attn_scales.contains(&scale) {
                attention(&mut out, &format!("decoder.upsamples.{idx}"), out_dim);
                idx += 1;
            }
            in_dim = out_dim;
        }
        if i + 1 != n {
            let t = ups.get(i).copied().unwrap_or(false);
            resample(
                &mut out,
                &format!("decoder.upsamples.{idx}"),
                out_dim,
                true,
                t,
            );
            idx += 1;
            scale *= 2.0;
        }
    }
    let fin = dec[n];
    push(
        &mut out,
        "decoder.head.0.gamma".into(),
        &[fin, 1, 1, 1],
        "Decoder head",
    );
    conv3d(
        &mut out,
        "decoder.head.2",
        fin,
        3,
        [3, 3, 3],
        "Decoder head",
    );
    out
}

/// Every tensor of the umT5 encoder state dict for `cfg` (`shared_pos = False`).
pub fn t5_keys(cfg: &T5Config) -> Vec<ExpectedTensor> {
    let mut out = Vec::new();
    let (d, a, f) = (cfg.dim, cfg.dim_attn, cfg.dim_ffn);
    push(
        &mut out,
        "token_embedding.weight".into(),
        &[cfg.vocab_size, d],
        "token embedding",
    );
    for i in 0..cfg.encoder_layers {
        let m = format!("block {i}");
        let p = format!("blocks.{i}");
        push(&mut out, format!("{p}.norm1.weight"), &[d], &m);
        for n in ["q", "k", "v"] {
            push(&mut out, format!("{p}.attn.{n}.weight"), &[a, d], &m);
        }
        push(&mut out, format!("{p}.attn.o.weight"), &[d, a], &m);
        push(&mut out, format!("{p}.norm2.weight"), &[d], &m);
        push(&mut out, format!("{p}.ffn.gate.0.weight"), &[f, d], &m);
        push(&mut out, format!("{p}.ffn.fc1.weight"), &[f, d], &m);
        push(&mut out, format!("{p}.ffn.fc2.weight"), &[d, f], &m);
        push(
            &mut out,
            format!("{p}.pos_embedding.embedding.weight"),
            &[cfg.num_buckets, cfg.num_heads],
            &m,
        );
    }
    push(&mut out, "norm.weight".into(), &[d], "final norm");
    out
}

/// Every tensor the wav2vec2 encoder reads, under `prefix` (`"wav2vec2."` for
/// `Wav2Vec2ForCTC`), with the new `parametrizations` names for the positional conv. Keys a
/// checkpoint may carry but the encoder ignores are listed by [`wav2vec_ignored`].
pub fn wav2vec_keys(cfg: &Wav2VecConfig, prefix: &str) -> Vec<ExpectedTensor> {
    let mut out = Vec::new();
    let p = prefix;
    let mut in_ch = 1;
    for (i, (&c, &k)) in cfg.conv_dim.iter().zip(&cfg.conv_kernel).enumerate() {
        let m = format!("feature conv {i}");
        push(
            &mut out,
            format!("{p}feature_extractor.conv_layers.{i}.conv.weight"),
            &[c, in_ch, k],
            &m,
        );
        if cfg.conv_bias {
            push(
                &mut out,
                format!("{p}feature_extractor.conv_layers.{i}.conv.bias"),
                &[c],
                &m,
            );
        }
        if cfg.feat_extract_norm == "layer" || i == 0 {
            for n in ["weight", "bias"] {
                push(
                    &mut out,
                    format!("{p}feature_extractor.conv_layers.{i}.layer_norm.{n}"),
                    &[c],
                    &m,
                );
            }
        }
        in_ch = c;
    }
    let h = cfg.hidden_size;
    for n in ["weight", "bias"] {
        push(
            &mut out,
            format!("{p}feature_projection.layer_norm.{n}"),
            &[in_ch],
            "feature projection",
        );
    }
    push(
        &mut out,
        format!("{p}feature_projection.projection.weight"),
        &[h, in_ch],
        "feature projection",
    );
    push(
        &mut out,
        format!("{p}feature_projection.projection.bias"),
        &[h],
        "feature projection",
    );
    let k = cfg.num_conv_pos_embeddings;
    let g = cfg.num_conv_pos_embedding_groups.max(1);
    let pc = format!("{p}encoder.pos_conv_embed.conv");
    push(&mut out, format!("{pc}.bias"), &[h], "positional conv");
    push(
        &mut out,
        format!("{pc}.parametrizations.weight.original0"),
        &[1, 1, k],
        "positional conv",
    );
    push(
        &mut out,
        format!("{pc}.parametrizations.weight.original1"),
        &[h, h / g, k],
        "positional conv",
    );
    for n in ["weight", "bias"] {
        push(
            &mut out,
            format!("{p}encoder.layer_norm.{n}"),
            &[h],
            "encoder norm",
        );
    }
    let f = cfg.intermediate_size;
    for i in 0..cfg.num_hidden_layers {
        let m = format!("layer {i}");
        let l = format!("{p}encoder.layers.{i}");
        for n in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            push(&mut out, format!("{l}.attention.{n}.weight"), &[h, h], &m);
            push(&mut out, format!("{l}.attention.{n}.bias"), &[h], &m);
        }
        for n in ["layer_norm", "final_layer_norm"] {
            push(&mut out, format!("{l}.{n}.weight"), &[h], &m);
            push(&mut out, format!("{l}.{n}.bias"), &[h], &m);
        }
        push(
            &mut out,
            format!("{l}.feed_forward.intermediate_dense.weight"),
            &[f, h],
            &m,
        );
        push(
            &mut out,
            format!("{l}.feed_forward.intermediate_dense.bias"),
            &[f],
            &m,
        );
        push(
            &mut out,
            format!("{l}.feed_forward.output_dense.weight"),
            &[h, f],
            &m,
        );
        push(
            &mut out,
            format!("{l}.feed_forward.output_dense.bias"),
            &[h],
            &m,
        );
    }
    out
}

/// Whether a wav2vec2 checkpoint key is one the encoder deliberately does not use (CTC head,
/// SpecAugment mask embedding, quantiser / adapter parts).
pub fn wav2vec_ignored(key: &str) -> bool {
    key.starts_with("lm_head.")
        || key.ends_with("masked_spec_embed")
        || key.contains("quantizer.")
        || key.starts_with("project_")
        || key.contains("adapter.")
}

/// Maps the legacy weight-norm names (`weight_g` / `weight_v`) to the current ones, so that a
/// legacy checkpoint is checked against [`wav2vec_keys`].
pub fn wav2vec_canonical_key(key: &str) -> String {
    if let Some(base) = key.strip_suffix(".weight_g") {
        format!("{base}.parametrizations.weight.original0")
    } else if let Some(base) = key.strip_suffix(".weight_v") {
        format!("{base}.parametrizations.weight.original1")
    } else {
        key.to_string()
    }
}
