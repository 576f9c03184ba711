//! The waveform envelope drawn by a WGSL shader (`shaders/waveform.wgsl`) through an egui
//! paint callback, when the window renders with wgpu: one quad instead of one line shape per
//! pixel column. The glow renderer (and anything without wgpu) keeps the painter path in
//! `waveform.rs`.

use std::sync::Arc;

use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, ScreenDescriptor, wgpu};
use egui::{Color32, PaintCallbackInfo, Rect};

const SHADER: &str = include_str!("../../shaders/waveform.wgsl");
/// Bytes of the shader's `Params`: a vec4 and four 32-bit scalars.
const PARAMS_BYTES: u64 = 32;
/// Bytes of one `[min, max]` peak.
const PEAK_BYTES: u64 = 8;

/// The pipeline and buffers, created once per window and kept in egui's callback resources.
struct WaveformPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    params: wgpu::Buffer,
    peaks: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// The peaks now in `peaks` (same `Arc` = nothing to upload).
    uploaded: Option<Arc<Vec<[f32; 2]>>>,
}

/// Registers the waveform pipeline with the window's wgpu renderer; returns whether the
/// shader path is available.
pub fn install(render_state: Option<&egui_wgpu::RenderState>) -> bool {
    let Some(state) = render_state else {
        return false;
    };
    let device = &state.device;
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("waveform"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("waveform"),
        entries: &[
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
                },
                count: None,
            },
            wgpu::BindGroupLayoutEntry {
                binding: 1,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(PEAK_BYTES),
                },
                count: None,
            },
        ],
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("waveform"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("waveform"),
        layout: Some(&pipeline_layout),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: Default::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: state.target_format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    });
    let params = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("waveform params"),
        size: PARAMS_BYTES,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let peaks = peak_buffer(device, 1);
    let bind_group = bind_group(device, &layout, &params, &peaks);
    state
        .renderer
        .write()
        .callback_resources
        .insert(WaveformPipeline {
            pipeline,
            layout,
            params,
            peaks,
            bind_group,
            uploaded: None,
        });
    true
}

fn peak_buffer(device: &wgpu::Device, peaks: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("waveform peaks"),
        size: PEAK_BYTES * peaks.max(1) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    params: &wgpu::Buffer,
    peaks: &wgpu::Buffer,
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("waveform"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: peaks.as_entire_binding(),
            },
        ],
    })
}

/// One waveform to draw.
pub struct WaveformCallback {
    pub peaks: Arc<Vec<[f32; 2]>>,
    pub color: Color32,
    pub rect: Rect,
    /// Free pixels (points) above and below the envelope.
    pub margin: f32,
}

impl CallbackTrait for WaveformCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get_mut::<WaveformPipeline>() else {
            return Vec::new();
        };
        let fresh = res
            .uploaded
            .as_ref()
            .is_none_or(|p| !Arc::ptr_eq(p, &self.peaks));
        if fresh {
            let needed = PEAK_BYTES * self.peaks.len().max(1) as u64;
            if res.peaks.size() < needed {
                res.peaks = peak_buffer(device, self.peaks.len());
                res.bind_group = bind_group(device, &res.layout, &res.params, &res.peaks);
            }
            let bytes: Vec<u8> = self
                .peaks
                .iter()
                .flat_map(|[lo, hi]| lo.to_le_bytes().into_iter().chain(hi.to_le_bytes()))
                .collect();
            if !bytes.is_empty() {
                queue.write_buffer(&res.peaks, 0, &bytes);
            }
            res.uploaded = Some(self.peaks.clone());
        }
        let ppp = screen.pixels_per_point;
        let [r, g, b, a] = self.color.to_normalized_gamma_f32();
        let mut params = Vec::with_capacity(PARAMS_BYTES as usize);
        for v in [r, g, b, a] {
            params.extend_from_slice(&v.to_le_bytes());
        }
        params.extend_from_slice(&(self.peaks.len() as u32).to_le_bytes());
        params.extend_from_slice(&(self.rect.width() * ppp).to_le_bytes());
        params.extend_from_slice(&(self.rect.height() * ppp).to_le_bytes());
        params.extend_from_slice(&(self.margin * ppp).to_le_bytes());
        queue.write_buffer(&res.params, 0, &params);
        Vec::new()
    }

    fn paint(
        &self,
        _info: PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        let Some(res) = resources.get::<WaveformPipeline>() else {
            return;
        };
        render_pass.set_pipeline(&res.pipeline);
        render_pass.set_bind_group(0, &res.bind_group, &[]);
        render_pass.draw(0..6, 0..1);
    }
}
