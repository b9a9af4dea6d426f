// vasr's microphone processor (AudioWorklet): the context's input (any rate, any channel count) to
// 16 kHz mono little-endian int16, posted to the page in frames of FRAME_MS.
//
// Resampling is a windowed-sinc band-limited interpolator (the method of Smith's "Digital Audio
// Resampling" and of libsamplerate/soxr, with a Kaiser window): each output sample is the input
// convolved with a low-pass kernel centred on its exact input time, so any rate ratio works
// (48000 -> 16000, 44100 -> 16000, 8000 -> 16000) and nothing above the output's Nyquist folds back.
// The kernel is tabulated once and interpolated linearly between table points.
//
// Loaded as a plain script (not in an AudioWorkletGlobalScope) it only defines globalThis.VasrResampler,
// so that the resampler can be checked in a page or in Node.

const TARGET_RATE = 16000;      // Hz: what the server's model runs at
const FRAME_MS = 100;           // ms of audio per message to the page (and per WebSocket frame)
const PASS_FRACTION = 0.9;      // low-pass cut-off as a fraction of the lower rate's Nyquist (7.2 kHz at 16 kHz)
const ZERO_CROSSINGS = 24;      // kernel half-length, in zero crossings of the sinc
const KAISER_BETA = 8.0;        // window shape: about -80 dB side lobes
const TABLE_STEPS = 256;        // kernel table points per input sample

function besselI0(x) {
  // the zeroth-order modified Bessel function, by its power series (converges fast for x < 20)
  let sum = 1, term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

class VasrResampler {
  // inRate, outRate in Hz. push(Float32Array) returns the Float32Array of output samples it completes;
  // flush() returns the rest, so that the total is round(inputs * outRate / inRate).
  constructor(inRate, outRate) {
    if (!(inRate > 0 && outRate > 0)) throw new Error(`bad rates ${inRate} -> ${outRate}`);
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate;                       // input samples per output sample
    this.identity = inRate === outRate;
    // cut-off in cycles per input sample; the kernel's gain 2*fc keeps DC at 1
    this.fc = 0.5 * PASS_FRACTION * Math.min(1, outRate / inRate);
    this.half = ZERO_CROSSINGS / (2 * this.fc);        // kernel half-width, input samples
    const n = Math.ceil(this.half * TABLE_STEPS) + 2;
    this.table = new Float64Array(n);
    const i0beta = besselI0(KAISER_BETA);
    for (let i = 0; i < n; i++) {
      const d = i / TABLE_STEPS;                       // distance from the centre, input samples
      if (d >= this.half) continue;
      const x = 2 * this.fc * d;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = d / this.half;
      this.table[i] = 2 * this.fc * sinc * besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0beta;
    }
    // history: the stream starts with zeros before its first sample
    this.pad = Math.ceil(this.half) + 1;
    this.buf = new Float32Array(4096);
    this.len = this.pad;                                // samples held in buf (buf[0..pad) are zeros)
    this.t = this.pad;                                  // input time of the next output, in buf's index
    this.consumed = 0;                                  // input samples received
    this.produced = 0;                                  // output samples returned
  }

  kernel(d) {
    const p = Math.abs(d) * TABLE_STEPS;
    const i = Math.floor(p);
    const f = p - i;
    return this.table[i] * (1 - f) + this.table[i + 1] * f;
  }

  push(input) {
    this.consumed += input.length;
    if (this.identity) {
      this.produced += input.length;
      return Float32Array.from(input);
    }
    if (this.len + input.length > this.buf.length) {
      const grown = new Float32Array(2 * (this.len + input.length));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
    return this.drain(this.len - 1);
  }

  flush() {
    // zeros after the last sample complete the kernels of the last outputs
    const wanted = Math.round(this.consumed * this.outRate / this.inRate);
    if (this.identity) return new Float32Array(0);
    const tail = [];
    while (this.produced < wanted) {
      const zeros = new Float32Array(Math.ceil(this.half) + 1);
      const len = this.len + zeros.length;
      if (len > this.buf.length) {
        const grown = new Float32Array(2 * len);
        grown.set(this.buf.subarray(0, this.len));
        this.buf = grown;
      }
      this.buf.set(zeros, this.len);
      this.len = len;
      const out = this.drain(this.len - 1, wanted - this.produced);
      tail.push(out);
    }
    const total = tail.reduce((n, a) => n + a.length, 0);
    const joined = new Float32Array(total);
    let at = 0;
    for (const a of tail) { joined.set(a, at); at += a.length; }
    return joined;
  }

  drain(lastIndex, limit = Infinity) {
    // every output whose kernel lies within buf[0..lastIndex]
    const count = Math.max(0, Math.min(limit, Math.floor((lastIndex - this.half - this.t) / this.step) + 1));
    const out = new Float32Array(count);
    const buf = this.buf, half = this.half;
    for (let k = 0; k < count; k++) {
      const t = this.t;
      const lo = Math.ceil(t - half), hi = Math.floor(t + half);
      let acc = 0;
      for (let i = lo; i <= hi; i++) acc += buf[i] * this.kernel(t - i);
      out[k] = acc;
      this.t += this.step;
    }
    this.produced += count;
    // drop the samples no later output needs, keeping t small (exact: integers are subtracted)
    const drop = Math.max(0, Math.floor(this.t - half) - 1);
    if (drop > 0) {
      buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.t -= drop;
    }
    return out;
  }
}

globalThis.VasrResampler = VasrResampler;

if (typeof registerProcessor === "function") {
  class RecorderProcessor extends AudioWorkletProcessor {
    // port messages out: ArrayBuffer (FRAME_MS of int16 at TARGET_RATE; the last one may be shorter),
    // then {type: "flushed"} after a {type: "flush"} from the page; the processor then stops.
    constructor() {
      super();
      this.resampler = new VasrResampler(sampleRate, TARGET_RATE);   // sampleRate: the context's, a global here
      this.frame = new Int16Array(TARGET_RATE * FRAME_MS / 1000);
      this.fill = 0;
      this.running = true;
      this.port.onmessage = (e) => {
        if (e.data && e.data.type === "flush" && this.running) {
          this.running = false;
          this.write(this.resampler.flush());
          this.post(true);
          this.port.postMessage({ type: "flushed", inputRate: sampleRate });
        }
      };
    }

    write(samples) {
      for (let i = 0; i < samples.length; i++) {
        const s = Math.max(-1, Math.min(1, samples[i]));
        this.frame[this.fill++] = Math.round(s * 32767);
        if (this.fill === this.frame.length) this.post(false);
      }
    }

    post(partialFrame) {
      if (this.fill === 0) return;
      const data = partialFrame ? this.frame.slice(0, this.fill) : this.frame.slice();
      this.port.postMessage(data.buffer, [data.buffer]);
      this.fill = 0;
    }

    process(inputs) {
      if (!this.running) return false;
      const channels = inputs[0];
      if (channels && channels.length) {
        const n = channels[0].length;
        let mono = channels[0];
        if (channels.length > 1) {
          mono = new Float32Array(n);
          for (const ch of channels) for (let i = 0; i < n; i++) mono[i] += ch[i];
          for (let i = 0; i < n; i++) mono[i] /= channels.length;
        }
        this.write(this.resampler.push(mono));
      }
      return true;
    }
  }
  registerProcessor("vasr-recorder", RecorderProcessor);
}
