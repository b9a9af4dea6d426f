# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""Kaldi-compatible log-mel filterbank features, compiled: mirrors ``fbank_py`` (same API, and in
float64 throughout, so the same features: bit-identical on every signal measured).

Frames go through the zero-padded float64 (BLOCK_FRAMES, fft_size) block of the shared driver
``fbank_py.blocked_fbank``, so that the rows and their spectra stay in cache. One compiled pass
writes each frame, with edge reflection, dither, DC removal, pre-emphasis and window, into a row;
numpy's pocketfft (the reference's FFT; scipy's measured 1.5x slower on these blocks) takes the real
FFT of all rows in one call; a second compiled pass sums the power spectrum over each mel filter's
few nonzero bins (``fbank_py.mel_spans``), four frames at a time so that the short filter loops share their weight loads and branches; numpy's SIMD
log finishes, in float64, before the one rounding to float32. ``fbank_nb`` runs the same two loops
under Numba, with the same arithmetic in the same order: the two backends agree exactly.

Measured on 10 s clips (one thread, on 2 cores that other jobs share; best of 40): 0.14-0.16 ms/s,
of which the float64 rfft is ~0.09-0.12 (float32: ~0.065) and, timed alone (Numba's loops),
framing ~0.024, mel ~0.028, log and rounding ~0.007. The former float32 buffers and FFT ran
0.10-0.11 ms/s but were up to 2.7e-4 off the reference on speech (1e-3 on a tone over quiet noise),
and an int8 model's transcript of 1 file in 20 changed with the backend. Tried and dropped before
(in float32): a dense (257, 80) sgemm, sgemms over groups of 10 filters, filters one frame at a
time; two frames per complex FFT (less FFT, as much more in interleaved stores); bin-major frames
and FFT (cheaper mel, costlier transposed stores); -march=native (no gain, in float64 too).
"""
import numpy as np

from vasr.kernels import fbank_py as _py
from vasr.kernels.fbank_py import FbankOptions, num_frames

__all__ = ["FbankOptions", "num_frames", "compute_fbank", "compute_fbank_batch", "FbankStream"]

BLOCK_FRAMES = 256  # frames per FFT call: 1 MiB of float64 rows + 1 MiB of spectra at fft_size 512 (128, 64: no faster)
MEL_FRAMES = 4  # frames whose mel sums share one pass over the filter weights (_mel_rows unrolls 4)

cdef double FLT_EPSILON = _py.FLT_EPSILON


cdef void _fill_rows(const float* samples, Py_ssize_t offset, Py_ssize_t total, Py_ssize_t first,
                     Py_ssize_t count, const float* noise, double* rows, Py_ssize_t row_stride,
                     const double* window, Py_ssize_t length, Py_ssize_t shift, Py_ssize_t start0,
                     double preemph, bint remove_dc, double* frame) noexcept nogil:
    """Frames first.. of one segment (see ``fbank_py.Segment``) into ``count`` rows, up to ``length``
    (the zero padding after it is left as it is); ``noise`` is NULL or (count, length) dither."""
    cdef Py_ssize_t k, i, j, idx, start, period = 2 * total
    cdef double partial[8]
    cdef double mean
    cdef const float* src
    cdef double* out
    for k in range(count):
        start = start0 + (first + k) * shift
        if start >= 0 and start + length <= total:
            src = samples + (start - offset)
            for i in range(length):
                frame[i] = src[i]
        else:
            for i in range(length):
                # Kaldi's reflection: the signal extended symmetrically with period 2 * total
                idx = (start + i) % period
                if idx < 0:
                    idx += period
                if idx >= total:
                    idx = period - 1 - idx
                frame[i] = samples[idx - offset]
        if noise != NULL:
            for i in range(length):
                frame[i] += noise[k * length + i]
        mean = 0.0
        if remove_dc:
            # eight partial sums: a loop the compiler vectorizes, and a shorter rounding chain
            for j in range(8):
                partial[j] = 0.0
            i = 0
            while i + 8 <= length:
                for j in range(8):
                    partial[j] += frame[i + j]
                i += 8
            while i < length:
                mean += frame[i]
                i += 1
            for j in range(8):
                mean += partial[j]
            mean /= length
        # y[i] = (x[i] - mean) - preemph * (x[i-1] - mean), y[0] = (x[0] - mean) * (1 - preemph)
        out = rows + k * row_stride
        out[0] = ((frame[0] - mean) - preemph * (frame[0] - mean)) * window[0]
        for i in range(1, length):
            out[i] = ((frame[i] - mean) - preemph * (frame[i - 1] - mean)) * window[i]


cdef void _mel_rows(const double* spectra, Py_ssize_t count, Py_ssize_t num_fft_bins, const Py_ssize_t* first,
                    const Py_ssize_t* bins, const Py_ssize_t* offset, const double* weights, Py_ssize_t num_bins,
                    double* out, double* power) noexcept nogil:
    """(count, num_fft_bins) interleaved complex spectra -> (count, num_bins) mel power floored at
    FLT_EPSILON; ``power`` is scratch of MEL_FRAMES * num_fft_bins doubles."""
    cdef Py_ssize_t t0, f, k, m, b, lo
    cdef double s0, s1, s2, s3, w, re, im
    cdef const double* z
    cdef const double* wp
    cdef double* p
    cdef double* p0 = power
    cdef double* p1 = power + num_fft_bins
    cdef double* p2 = power + 2 * num_fft_bins
    cdef double* p3 = power + 3 * num_fft_bins
    cdef double sums[4]
    for t0 in range(0, count, 4):
        for f in range(4):
            p = power + f * num_fft_bins
            if t0 + f < count:
                z = spectra + (t0 + f) * 2 * num_fft_bins
                for k in range(num_fft_bins):
                    re = z[2 * k]
                    im = z[2 * k + 1]
                    p[k] = re * re + im * im
            else:
                for k in range(num_fft_bins):
                    p[k] = 0.0
        for m in range(num_bins):
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            lo = first[m]
            wp = weights + offset[m]
            for b in range(bins[m]):
                w = wp[b]
                s0 += w * p0[lo + b]
                s1 += w * p1[lo + b]
                s2 += w * p2[lo + b]
                s3 += w * p3[lo + b]
            sums[0] = s0
            sums[1] = s1
            sums[2] = s2
            sums[3] = s3
            for f in range(min(4, count - t0)):
                out[(t0 + f) * num_bins + m] = sums[f] if sums[f] > FLT_EPSILON else FLT_EPSILON


def _fbank_segments(segments, noises, opts):
    """The compiled kernel (``fbank_py.SegmentKernel``): frames of all segments share FFT calls."""
    first, bins, offset, weights = _py.mel_spans(opts)
    cdef const double[::1] window_view = _py.window_function(opts)
    cdef const Py_ssize_t[::1] first_view = first, bins_view = bins, offset_view = offset
    cdef const double[::1] weights_view = weights
    cdef Py_ssize_t length = opts.window_length, shift = opts.window_shift, start0 = _py.frame_start(0, opts)
    cdef Py_ssize_t num_fft_bins = opts.fft_size // 2 + 1, num_bins = opts.num_bins
    cdef double[::1] frame = np.empty(length)
    cdef double[::1] power = np.empty(MEL_FRAMES * num_fft_bins)
    cdef double preemph = opts.preemph
    cdef bint remove_dc = opts.remove_dc

    def fill_rows(seg, Py_ssize_t k, noise, double[:, ::1] rows):
        cdef const float[::1] samples = seg.samples
        cdef const float[:, ::1] noise_view
        if noise is not None:
            noise_view = noise
        _fill_rows(&samples[0], seg.offset, seg.total, seg.first + k, rows.shape[0],
                   &noise_view[0, 0] if noise is not None else NULL, &rows[0, 0], rows.shape[1],
                   &window_view[0], length, shift, start0, preemph, remove_dc, &frame[0])

    def rows_to_mel(rows, double[:, ::1] out):
        cdef const double[:, ::1] spectra = np.fft.rfft(rows, axis=1).view(np.float64)
        _mel_rows(&spectra[0, 0], spectra.shape[0], num_fft_bins, &first_view[0], &bins_view[0],
                  &offset_view[0], &weights_view[0], num_bins, &out[0, 0], &power[0])

    return _py.blocked_fbank(segments, noises, opts, fill_rows, rows_to_mel, BLOCK_FRAMES)


compute_fbank, compute_fbank_batch, FbankStream = _py.backend_api(_fbank_segments, __name__)
