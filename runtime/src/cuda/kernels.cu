// graphc's hand-written CUDA kernels: every op that is neither elementwise (generated per fused
// node, runtime/src/cuda/codegen.rs) nor a matrix product (cuBLAS). Every kernel loops
// grid-stride over its outputs and computes each output in one thread, in a fixed order, so
// results do not depend on the launch configuration. Random numbers are drawn on the host (as
// the CPU backend draws them) and copied in. Compiled after prelude.cuh.

extern "C" __global__ void fill(float* out, float value, u64 n) {
    FOR_EACH(i, n) { out[i] = value; }
}

// out[i] = in[base + offset in `src`]: broadcasts (stride 0), slices, reshaping copies.
extern "C" __global__ void gather(float* out, const float* in, u64 n, View src, i64 base) {
    FOR_EACH(i, n) { out[i] = in[base + offset_of(src, i)]; }
}

// out[base + offset in `dst`] = in[i]: one input of a concatenation.
extern "C" __global__ void scatter(float* out, const float* in, u64 n, View dst, i64 base) {
    FOR_EACH(i, n) { out[base + offset_of(dst, i)] = in[i]; }
}

// Sum (scale 1) or mean (scale 1/count) over the reduced axes: output i sits at offset
// `kept`(i) of the input, and the reduced elements at offsets `reduced`(j) from there, summed in
// f64 in row-major order.
extern "C" __global__ void reduce(float* out, const float* in, u64 n, View kept, View reduced, u64 count, double scale) {
    FOR_EACH(i, n) {
        const i64 base = offset_of(kept, i);
        double sum = 0.0;
        for (u64 j = 0; j < count; ++j) sum += (double)in[base + offset_of(reduced, j)];
        out[i] = (float)(sum * scale);
    }
}

// `reduce` for long reductions: each output is summed by a whole block (WIDE_BLOCK threads, each
// summing a strided share in f64, then a tree), launched with WIDE_BLOCK threads per output.
extern "C" __global__ void reduce_wide(float* out, const float* in, u64 n, View kept, View reduced, u64 count, double scale) {
    __shared__ double partial[WIDE_BLOCK];
    FOR_EACH_BLOCK(i, n) {
        const i64 base = offset_of(kept, i);
        double sum = 0.0;
        for (u64 j = threadIdx.x; j < count; j += blockDim.x) sum += (double)in[base + offset_of(reduced, j)];
        const double total = block_sum(partial, sum);
        if (threadIdx.x == 0) out[i] = (float)(total * scale);
    }
}

// Softmax (or log-softmax when `log`) along the middle axis of an outer×axis×inner tensor.
extern "C" __global__ void softmax(float* out, const float* in, u64 outer, u64 axis, u64 inner, int log) {
    FOR_EACH(i, outer * inner) {
        const u64 o = i / inner, k = i % inner;
        const float* x = in + o * axis * inner + k;
        float* y = out + o * axis * inner + k;
        float max = x[0];
        for (u64 a = 1; a < axis; ++a) max = fmaxf(max, x[a * inner]);
        double sum = 0.0;
        for (u64 a = 0; a < axis; ++a) sum += (double)expf(x[a * inner] - max);
        const float log_sum = (float)::log(sum);
        for (u64 a = 0; a < axis; ++a) {
            const float shifted = x[a * inner] - max;
            y[a * inner] = log ? shifted - log_sum : expf(shifted) / (float)sum;
        }
    }
}

// Pooling geometry, as Caffe: windows may hang over the padding; MAX ignores padded positions;
// AVE divides by the window clipped to the padded input.
struct Pool {
    int h, w, ho, wo, kh, kw, sh, sw, ph, pw, max;
};

// One axis of the window of output `o`: the input range [lo, hi) and the divisor's extent.
__device__ void window(int o, int k, int s, int p, int size, int* lo, int* hi, int* extent) {
    const int start = o * s - p;
    const int end = min(start + k, size + p);
    *extent = end - start;
    *lo = max(start, 0);
    *hi = max(min(end, size), *lo);
}

// The index (in its plane) of the first maximal element of window (oy, ox), or -1 if empty.
__device__ int argmax(const float* plane, const Pool& p, int oy, int ox) {
    int y0, y1, x0, x1, ey, ex;
    window(oy, p.kh, p.sh, p.ph, p.h, &y0, &y1, &ey);
    window(ox, p.kw, p.sw, p.pw, p.w, &x0, &x1, &ex);
    int best = -1;
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
            if (best < 0 || plane[y * p.w + x] > plane[best]) best = y * p.w + x;
    return best;
}

extern "C" __global__ void pool2d(float* out, const float* in, u64 planes, Pool p) {
    FOR_EACH(i, planes * p.ho * p.wo) {
        const u64 plane = i / (p.ho * p.wo);
        const int oy = (int)(i / p.wo % p.ho), ox = (int)(i % p.wo);
        const float* x = in + plane * p.h * p.w;
        if (p.max) {
            const int best = argmax(x, p, oy, ox);
            out[i] = best < 0 ? 0.0f : x[best];
        } else {
            int y0, y1, x0, x1, ey, ex;
            window(oy, p.kh, p.sh, p.ph, p.h, &y0, &y1, &ey);
            window(ox, p.kw, p.sw, p.pw, p.w, &x0, &x1, &ex);
            float sum = 0.0f;
            for (int y = y0; y < y1; ++y)
                for (int xx = x0; xx < x1; ++xx) sum += x[y * p.w + xx];
            out[i] = sum / (float)(ey * ex);
        }
    }
}

// The outputs whose windows along one axis can contain input position `y`.
__device__ void covering(int y, int k, int s, int p, int outputs, int* first, int* last) {
    const int num = y + p - k + 1;
    *first = num <= 0 ? 0 : (num + s - 1) / s;
    *last = min(outputs - 1, (y + p) / s);
}

// The input gradient of pooling, gathered per input element (no atomics): MAX routes each
// output's gradient to its window's first maximal element, AVE spreads it over the window.
extern "C" __global__ void pool2d_grad(float* dx, const float* in, const float* g, u64 planes, Pool p) {
    FOR_EACH(i, planes * p.h * p.w) {
        const u64 plane = i / (p.h * p.w);
        const int y = (int)(i / p.w % p.h), x = (int)(i % p.w);
        const float* xs = in + plane * p.h * p.w;
        const float* gs = g + plane * p.ho * p.wo;
        int oy0, oy1, ox0, ox1;
        covering(y, p.kh, p.sh, p.ph, p.ho, &oy0, &oy1);
        covering(x, p.kw, p.sw, p.pw, p.wo, &ox0, &ox1);
        float sum = 0.0f;
        for (int oy = oy0; oy <= oy1; ++oy)
            for (int ox = ox0; ox <= ox1; ++ox) {
                int y0, y1, x0, x1, ey, ex;
                window(oy, p.kh, p.sh, p.ph, p.h, &y0, &y1, &ey);
                window(ox, p.kw, p.sw, p.pw, p.w, &x0, &x1, &ex);
                if (y < y0 || y >= y1 || x < x0 || x >= x1) continue;
                if (p.max) {
                    if (argmax(xs, p, oy, ox) == y * p.w + x) sum += gs[oy * p.wo + ox];
                } else {
                    sum += gs[oy * p.wo + ox] / (float)(ey * ex);
                }
            }
        dx[i] = sum;
    }
}

// Nearest-neighbour upsampling of planes×h×w by `scale`.
extern "C" __global__ void upsample2d(float* out, const float* in, u64 planes, int h, int w, int scale) {
    const int ho = h * scale, wo = w * scale;
    FOR_EACH(i, planes * ho * wo) {
        const u64 plane = i / (ho * wo);
        const int y = (int)(i / wo % ho), x = (int)(i % wo);
        out[i] = in[plane * h * w + (y / scale) * w + x / scale];
    }
}

// The inverse map of one example's random affine warp from its four draws, as WarpAttrs::inverse_map
// computes it on the host: output (x, y) reads input (m[0]x + m[1]y + m[2], m[3]x + m[4]y + m[5]).
__device__ void warp_inverse_map(const float* d, int h, int w, float rotation, float scale, float translation, float* m) {
    const float angle = d[0] * rotation * 0.017453292519943295f;
    const float size = 1.0f + d[1] * scale;
    const float cx = (w - 1) * 0.5f, cy = (h - 1) * 0.5f;
    float sin, cos;
    sincosf(angle, &sin, &cos);
    const float ox = cx + d[2] * translation, oy = cy + d[3] * translation;
    m[0] = cos / size; m[1] = sin / size; m[3] = -sin / size; m[4] = cos / size;
    m[2] = cx - m[0] * ox - m[1] * oy;
    m[5] = cy - m[3] * ox - m[4] * oy;
}

// The plane of element i of images×channels planes of h×w, with its image's inverse map in m.
__device__ u64 warp_pixel(u64 i, const float* draws, int channels, int h, int w, float rotation, float scale, float translation, float* m) {
    const u64 plane = i / ((u64)h * w);
    warp_inverse_map(draws + plane / channels * 4, h, w, rotation, scale, translation, m);
    return plane;
}

// The bilinear weight of input pixel (px, py) at sampling point (sx, sy).
__device__ float tent2(float sx, float sy, int px, int py) {
    return fmaxf(0.0f, 1.0f - fabsf(sx - px)) * fmaxf(0.0f, 1.0f - fabsf(sy - py));
}

// Random affine warp of images×channels planes of h×w by each image's draws (4 per image):
// bilinear interpolation, zeros outside.
extern "C" __global__ void warp2d(float* out, const float* in, const float* draws, u64 images, int channels, int h, int w, float rotation, float scale, float translation) {
    FOR_EACH(i, images * channels * h * w) {
        float m[6];
        const u64 plane = warp_pixel(i, draws, channels, h, w, rotation, scale, translation, m);
        const int y = (int)(i / w % h), x = (int)(i % w);
        const float sx = m[0] * x + m[1] * y + m[2], sy = m[3] * x + m[4] * y + m[5];
        const int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
        const float* src = in + plane * h * w;
        float sum = 0.0f;
        for (int py = y0; py <= y0 + 1; ++py)
            for (int px = x0; px <= x0 + 1; ++px)
                if (py >= 0 && py < h && px >= 0 && px < w) sum += tent2(sx, sy, px, py) * src[py * w + px];
        out[i] = sum;
    }
}

// The warp's adjoint, gathered per input pixel (no atomics): the output pixels whose sampling
// point lies within one pixel of (x, y) lie in a box around the forward image of (x, y).
extern "C" __global__ void warp2d_grad(float* dx, const float* g, const float* draws, u64 images, int channels, int h, int w, float rotation, float scale, float translation) {
    FOR_EACH(i, images * channels * h * w) {
        float m[6];
        const u64 plane = warp_pixel(i, draws, channels, h, w, rotation, scale, translation, m);
        const int y = (int)(i / w % h), x = (int)(i % w);
        // The forward map inverts the 2×2 part of the inverse map.
        const float det = m[0] * m[4] - m[1] * m[3];
        const float fa = m[4] / det, fb = -m[1] / det, fd = -m[3] / det, fe = m[0] / det;
        const float rx = x - m[2], ry = y - m[5];
        const float qx = fa * rx + fb * ry, qy = fd * rx + fe * ry;
        const float reach_x = fabsf(fa) + fabsf(fb), reach_y = fabsf(fd) + fabsf(fe);
        const int qx0 = max(0, (int)floorf(qx - reach_x)), qx1 = min(w - 1, (int)ceilf(qx + reach_x));
        const int qy0 = max(0, (int)floorf(qy - reach_y)), qy1 = min(h - 1, (int)ceilf(qy + reach_y));
        const float* gs = g + plane * h * w;
        float sum = 0.0f;
        for (int oy = qy0; oy <= qy1; ++oy)
            for (int ox = qx0; ox <= qx1; ++ox) {
                const float sx = m[0] * ox + m[1] * oy + m[2], sy = m[3] * ox + m[4] * oy + m[5];
                sum += tent2(sx, sy, x, y) * gs[oy * w + ox];
            }
        dx[i] = sum;
    }
}

// Convolution geometry of one image: c×h×w input, kh×kw window, ho×wo output.
struct Conv {
    int c, h, w, kh, kw, sh, sw, ph, pw, ho, wo;
};

// A batch of images (batch×c×h×w) unfolded into one matrix of c·kh·kw rows (ch, ky, kx) and
// batch·ho·wo columns (image, oy, ox), so that one GEMM convolves the whole batch.
extern "C" __global__ void im2col(float* cols, const float* images, Conv g, u64 batch) {
    const u64 plane = (u64)g.ho * g.wo, ld = batch * plane;
    FOR_EACH(i, (u64)g.c * g.kh * g.kw * ld) {
        const u64 row = i / ld, col = i % ld, image = col / plane;
        const int oy = (int)(col % plane / g.wo), ox = (int)(col % g.wo);
        const int ch = (int)(row / (g.kh * g.kw)), ky = (int)(row / g.kw % g.kh), kx = (int)(row % g.kw);
        const int y = oy * g.sh - g.ph + ky, x = ox * g.sw - g.pw + kx;
        const bool inside = y >= 0 && y < g.h && x >= 0 && x < g.w;
        cols[i] = inside ? images[((image * g.c + ch) * g.h + y) * g.w + x] : 0.0f;
    }
}

// The adjoint of im2col: each image element gathers, in a fixed (ky, kx) order, the columns
// its position was copied to.
extern "C" __global__ void col2im(float* images, const float* cols, Conv g, u64 batch) {
    const u64 plane = (u64)g.ho * g.wo, ld = batch * plane;
    FOR_EACH(i, batch * g.c * g.h * g.w) {
        const u64 image = i / ((u64)g.c * g.h * g.w);
        const int ch = (int)(i / (g.h * g.w) % g.c), y = (int)(i / g.w % g.h), x = (int)(i % g.w);
        float sum = 0.0f;
        for (int ky = 0; ky < g.kh; ++ky) {
            const int ty = y + g.ph - ky;
            if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.ho) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                const int tx = x + g.pw - kx;
                if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.wo) continue;
                const u64 row = ((u64)ch * g.kh + ky) * g.kw + kx;
                sum += cols[row * ld + image * plane + (ty / g.sh) * g.wo + tx / g.sw];
            }
        }
        images[i] = sum;
    }
}

// One-hot rows from integer labels stored as floats.
extern "C" __global__ void one_hot(float* out, const float* labels, u64 rows, u64 classes) {
    FOR_EACH(i, rows * classes) { out[i] = (u64)labels[i / classes] == i % classes ? 1.0f : 0.0f; }
}

// The fraction of rows whose label is among the top_k scores, as the CPU kernel counts: a rival
// is another class scoring at least as high; a label that is not an integral class counts as a
// miss. One thread: a scalar per step.
extern "C" __global__ void accuracy(float* out, const float* scores, const float* labels, u64 rows, u64 classes, u64 top_k) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    u64 hits = 0;
    for (u64 r = 0; r < rows; ++r) {
        const float* s = scores + r * classes;
        const float label = labels[r];
        if (!(label >= 0.0f && label < (float)classes && floorf(label) == label)) continue;
        const u64 c = (u64)label;
        u64 rivals = 0;
        for (u64 k = 0; k < classes; ++k) rivals += k != c && s[k] >= s[c];
        hits += rivals < top_k;
    }
    out[0] = rows == 0 ? 0.0f : (float)((double)hits / (double)rows);
}
