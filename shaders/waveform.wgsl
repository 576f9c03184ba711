// The voice's waveform envelope, drawn in one quad: each pixel column looks up its
// [min, max] peak and is lit between the two. Replaces one line segment per column
// (thousands of egui shapes re-tessellated every frame) with a single draw.

struct Params {
    // Premultiplied RGBA of the envelope.
    color: vec4<f32>,
    // Peaks in `peaks`.
    columns: u32,
    // Width of the drawing in physical pixels (for anti-aliasing the edges).
    width_px: f32,
    // Height of the drawing in physical pixels.
    height_px: f32,
    // Pixels kept free above and below the envelope.
    margin_px: f32,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> peaks: array<vec2<f32>>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Two triangles covering the viewport egui sets to the callback's rectangle.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let c = corners[index];
    var out: VertexOut;
    out.position = vec4<f32>(c.x * 2.0 - 1.0, 1.0 - c.y * 2.0, 0.0, 1.0);
    out.uv = c;
    return out;
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    if (params.columns == 0u) {
        discard;
    }
    let column = min(u32(in.uv.x * f32(params.columns)), params.columns - 1u);
    let peak = clamp(peaks[column], vec2<f32>(-1.0), vec2<f32>(1.0));
    // Pixel rows from the centre line, up positive.
    let half = max(params.height_px * 0.5 - params.margin_px, 1.0);
    let y = (0.5 - in.uv.y) * params.height_px;
    let low = peak.x * half - 0.5;
    let high = peak.y * half + 0.5;
    // Coverage of this pixel by [low, high], so thin peaks stay visible and edges are soft.
    let coverage = clamp(min(y - low + 0.5, high - y + 0.5), 0.0, 1.0);
    if (coverage <= 0.0) {
        discard;
    }
    return params.color * coverage;
}
