"""Kaldi-compatible log-mel filterbank features, compiled by Numba: mirrors ``fbank_cy.pyx``.

Same API as ``fbank_py`` and the same kernel as the Cython backend, for machines without a C
compiler. The two jitted loops are translations of ``fbank_cy``'s ``_fill_rows`` and ``_mel_rows``
(same float64 arithmetic in the same order, so the two compiled backends give identical
features): one pass writes each frame, with edge reflection, dither, DC removal, pre-emphasis and
window, into a row of the zero-padded float64 block of ``fbank_py.blocked_fbank``; numpy's
pocketfft (the reference's FFT) takes the real FFT of the block from Python between the jitted
passes (Numba cannot call it); the second pass sums the power spectrum over each mel filter's nonzero bins
(``fbank_py.mel_spans``), four frames at a time. The block driver, the options, the frame count
and the streaming class are ``fbank_py``'s, exactly as ``fbank_cy`` uses them.

Compilation is lazy: no signatures are given and nothing runs at import, so importing costs only
Numba's own import (~0.16 s). The first call compiles the two loops for the one set of argument
types that ``_fbank_segments`` passes (~1.3 s) and caches the machine code beside this file
(``cache=True``); the first call of a later process loads it (~0.22 s, nearly all of it Numba's
own start-up, which a trivial cached function pays too). Measured on 10 s clips (one thread, on
2 cores that other jobs share; best of 40): 0.14-0.15 ms/s, as fast as ``fbank_cy`` (0.14-0.16)
and ~10x kaldi-native-fbank; the float64 FFT is 60-75% of it.
"""
import numba
import numpy as np

from vasr.kernels import fbank_py as _py
from vasr.kernels.fbank_py import FbankOptions, num_frames

__all__ = ["FbankOptions", "num_frames", "compute_fbank", "compute_fbank_batch", "FbankStream"]

BLOCK_FRAMES = 256  # frames per FFT call (fbank_cy's value; 128 and 64 are no faster here either)
MEL_FRAMES = 4  # frames whose mel sums share one pass over the filter weights (_mel_rows unrolls 4)
FLT_EPSILON = _py.FLT_EPSILON


@numba.njit(cache=True, nogil=True)
def _fill_rows(samples, offset, total, first, noise, rows, window, shift, start0, preemph, remove_dc, frame):
    """Frames first.. of one segment (see ``fbank_py.Segment``) into the rows of ``rows``, up to
    window_length columns; ``noise`` is (len(rows), window_length) dither or has no rows."""
    length = window.shape[0]
    period = 2 * total
    for k in range(rows.shape[0]):
        start = start0 + (first + k) * shift
        if start >= 0 and start + length <= total:
            src = samples[start - offset:start - offset + length]
            for i in range(length):
                frame[i] = src[i]
        else:
            for i in range(length):
                # Kaldi's reflection: the signal extended symmetrically with period 2 * total
                idx = (start + i) % period  # Python's %: never negative
                if idx >= total:
                    idx = period - 1 - idx
                frame[i] = samples[idx - offset]
        if noise.shape[0] != 0:
            dither = noise[k]
            for i in range(length):
                frame[i] += dither[i]
        mean = 0.0
        if remove_dc:
            # eight partial sums (fbank_cy's), added to the tail's sum in order
            p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = 0.0
            i = 0
            while i + 8 <= length:
                p0 += frame[i]
                p1 += frame[i + 1]
                p2 += frame[i + 2]
                p3 += frame[i + 3]
                p4 += frame[i + 4]
                p5 += frame[i + 5]
                p6 += frame[i + 6]
                p7 += frame[i + 7]
                i += 8
            while i < length:
                mean += frame[i]
                i += 1
            for partial in (p0, p1, p2, p3, p4, p5, p6, p7):
                mean += partial
            mean /= length
        # y[i] = (x[i] - mean) - preemph * (x[i-1] - mean), y[0] = (x[0] - mean) * (1 - preemph)
        row = rows[k]
        row[0] = ((frame[0] - mean) - preemph * (frame[0] - mean)) * window[0]
        for i in range(1, length):
            row[i] = ((frame[i] - mean) - preemph * (frame[i - 1] - mean)) * window[i]


@numba.njit(cache=True, nogil=True)
def _mel_rows(spectra, first, bins, offset, weights, out, power):
    """(count, num_fft_bins) complex spectra -> (count, num_bins) mel power floored at FLT_EPSILON;
    ``power`` is (MEL_FRAMES, num_fft_bins) scratch."""
    count = spectra.shape[0]
    p0, p1, p2, p3 = power[0], power[1], power[2], power[3]
    for t0 in range(0, count, MEL_FRAMES):
        for f in range(MEL_FRAMES):
            p = power[f]
            if t0 + f < count:
                z = spectra[t0 + f]
                for k in range(p.shape[0]):
                    re = z[k].real
                    im = z[k].imag
                    p[k] = re * re + im * im
            else:
                p[:] = 0.0
        for m in range(out.shape[1]):
            # slices, so that every index below is a range() counter: no negative-index checks
            lo, n, at = first[m], bins[m], offset[m]
            w, q0, q1, q2, q3 = weights[at:at + n], p0[lo:lo + n], p1[lo:lo + n], p2[lo:lo + n], p3[lo:lo + n]
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for b in range(n):
                s0 += w[b] * q0[b]
                s1 += w[b] * q1[b]
                s2 += w[b] * q2[b]
                s3 += w[b] * q3[b]
            for f, s in enumerate((s0, s1, s2, s3)):
                if t0 + f < count:
                    out[t0 + f, m] = s if s > FLT_EPSILON else FLT_EPSILON


def _fbank_segments(segments, noises, opts):
    """The Numba kernel (``fbank_py.SegmentKernel``): frames of all segments share FFT calls."""
    window = _py.window_function(opts)
    first, bins, offset, weights = _py.mel_spans(opts)
    shift, start0 = opts.window_shift, _py.frame_start(0, opts)
    preemph, remove_dc = float(opts.preemph), bool(opts.remove_dc)
    frame = np.empty(opts.window_length)
    power = np.empty((MEL_FRAMES, opts.fft_size // 2 + 1))
    no_noise = np.zeros((0, opts.window_length), dtype=np.float32)

    def fill_rows(seg, k, noise, rows):
        samples = seg.samples.view()
        samples.flags.writeable = False  # one compiled type, whether or not the caller's array is read-only
        _fill_rows(samples, seg.offset, seg.total, seg.first + k, no_noise if noise is None else noise, rows,
                   window, shift, start0, preemph, remove_dc, frame)

    def rows_to_mel(rows, out):
        _mel_rows(np.fft.rfft(rows, axis=1), first, bins, offset, weights, out, power)

    return _py.blocked_fbank(segments, noises, opts, fill_rows, rows_to_mel, BLOCK_FRAMES)


compute_fbank, compute_fbank_batch, FbankStream = _py.backend_api(_fbank_segments, __name__)
