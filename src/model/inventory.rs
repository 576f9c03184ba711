//! The DiT's parameter inventory computed from a config alone: every state-dict key with its
//! shape, the component it belongs to and whether the reference quantises it to FP8. Used
//! for size estimates and for validating checkpoints without loading them.

use super::config::DitConfig;

/// The parts of the DiT that spec §3.1.12 accounts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Component {
    Blocks,
    AudioInjectorAttention,
    AudioInjectorAdaLn,
    TimeProjection,
    AudioEncoder,
    TextEmbedding,
    TimeEmbedding,
    FramePack,
    PatchEmbedding,
    CondEncoder,
    Head,
    CondMask,
}

/// One expected tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSpec {
    pub key: String,
    pub shape: Vec<usize>,
    pub component: Component,
    /// A linear weight that `replace_linear_with_scaled_fp8` converts to e4m3.
    pub fp8: bool,
}

impl ParameterSpec {
    pub fn elements(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

struct Builder(Vec<ParameterSpec>);

impl Builder {
    fn push(&mut self, key: String, shape: &[usize], component: Component, fp8: bool) {
        self.0.push(ParameterSpec {
            key,
            shape: shape.to_vec(),
            component,
            fp8,
        });
    }

    /// `<prefix>.weight [out, in]` and `<prefix>.bias [out]`.
    fn linear(
        &mut self,
        prefix: &str,
        input: usize,
        output: usize,
        component: Component,
        fp8: bool,
    ) {
        self.push(format!("{prefix}.weight"), &[output, input], component, fp8);
        self.push(format!("{prefix}.bias"), &[output], component, false);
    }

    fn conv(&mut self, prefix: &str, weight: &[usize], component: Component) {
        self.push(format!("{prefix}.weight"), weight, component, false);
        self.push(format!("{prefix}.bias"), &weight[..1], component, false);
    }

    fn attention(&mut self, prefix: &str, dim: usize, component: Component) {
        for name in ["q", "k", "v", "o"] {
            self.linear(&format!("{prefix}.{name}"), dim, dim, component, true);
        }
        for name in ["norm_q", "norm_k"] {
            self.push(format!("{prefix}.{name}.weight"), &[dim], component, false);
        }
    }
}

/// Every tensor of a `CausalWanModel_S2V` state dict for `config`.
pub fn parameter_inventory(config: &DitConfig) -> Vec<ParameterSpec> {
    use Component::*;
    let d = config.dim;
    let [pt, ph, pw] = config.patch_size;
    let mut b = Builder(Vec::new());
    b.conv(
        "patch_embedding",
        &[d, config.in_dim, pt, ph, pw],
        PatchEmbedding,
    );
    b.linear("text_embedding.0", config.text_dim, d, TextEmbedding, false);
    b.linear("text_embedding.2", d, d, TextEmbedding, false);
    b.linear("time_embedding.0", config.freq_dim, d, TimeEmbedding, false);
    b.linear("time_embedding.2", d, d, TimeEmbedding, false);
    b.linear("time_projection.1", d, 6 * d, TimeProjection, false);
    for i in 0..config.num_layers {
        let p = format!("blocks.{i}");
        b.push(format!("{p}.modulation"), &[1, 6, d], Blocks, false);
        b.attention(&format!("{p}.self_attn"), d, Blocks);
        b.attention(&format!("{p}.cross_attn"), d, Blocks);
        b.push(format!("{p}.norm3.weight"), &[d], Blocks, false);
        b.push(format!("{p}.norm3.bias"), &[d], Blocks, false);
        b.linear(&format!("{p}.ffn.0"), d, config.ffn_dim, Blocks, true);
        b.linear(&format!("{p}.ffn.2"), config.ffn_dim, d, Blocks, true);
    }
    b.linear(
        "head.head",
        d,
        config.out_dim * config.patch_volume(),
        Head,
        false,
    );
    b.push("head.modulation".into(), &[1, 2, d], Head, false);
    b.conv(
        "cond_encoder",
        &[d, config.cond_dim, pt, ph, pw],
        CondEncoder,
    );
    b.push(
        "trainable_cond_mask.weight".into(),
        &[3, d],
        CondMask,
        false,
    );
    let enc = "casual_audio_encoder";
    let n = config.num_audio_token;
    b.push(
        format!("{enc}.weights"),
        &[1, config.audio_encoder_layers, 1, 1],
        AudioEncoder,
        false,
    );
    b.conv(
        &format!("{enc}.encoder.conv1_local.conv"),
        &[d / 4 * n, config.audio_dim, 3],
        AudioEncoder,
    );
    b.conv(
        &format!("{enc}.encoder.conv1_global.conv"),
        &[d / 4, config.audio_dim, 3],
        AudioEncoder,
    );
    b.conv(
        &format!("{enc}.encoder.conv2.conv"),
        &[d / 2, d / 4, 3],
        AudioEncoder,
    );
    b.conv(
        &format!("{enc}.encoder.conv3.conv"),
        &[d, d / 2, 3],
        AudioEncoder,
    );
    b.linear(
        &format!("{enc}.encoder.final_linear"),
        d,
        d,
        AudioEncoder,
        false,
    );
    b.push(
        format!("{enc}.encoder.padding_tokens"),
        &[1, 1, 1, d],
        AudioEncoder,
        false,
    );
    for j in 0..config.audio_inject_layers.len() {
        b.attention(
            &format!("audio_injector.injector.{j}"),
            d,
            AudioInjectorAttention,
        );
    }
    for j in 0..config.audio_inject_layers.len() {
        b.linear(
            &format!("audio_injector.injector_adain_layers.{j}.linear"),
            d,
            2 * d,
            AudioInjectorAdaLn,
            true,
        );
    }
    b.conv(
        "frame_packer.proj",
        &[d, config.in_dim, pt, ph, pw],
        FramePack,
    );
    b.conv(
        "frame_packer.proj_2x",
        &[d, config.in_dim, 2 * pt, 2 * ph, 2 * pw],
        FramePack,
    );
    b.conv(
        "frame_packer.proj_4x",
        &[d, config.in_dim, 4 * pt, 4 * ph, 4 * pw],
        FramePack,
    );
    b.0
}

/// Parameter and byte totals of an inventory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SizeSummary {
    pub parameters: u64,
    pub bf16_bytes: u64,
    /// FP8 weights at one byte, everything else bf16 (scales not counted).
    pub fp8_bytes: u64,
    pub fp8_weight_elements: u64,
    pub fp8_layers: usize,
}

pub fn size_summary<'a>(specs: impl IntoIterator<Item = &'a ParameterSpec>) -> SizeSummary {
    let mut s = SizeSummary::default();
    for spec in specs {
        let n = spec.elements();
        s.parameters += n;
        s.bf16_bytes += 2 * n;
        if spec.fp8 {
            s.fp8_bytes += n;
            s.fp8_weight_elements += n;
            s.fp8_layers += 1;
        } else {
            s.fp8_bytes += 2 * n;
        }
    }
    s
}
