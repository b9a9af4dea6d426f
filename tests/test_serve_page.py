"""The web page in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) against ``vasr serve`` on loopback, with the session's streaming fixture.

Recording: Chromium's fake microphone plays a WAV (speech, then silence; it loops), the page's
AudioWorklet resamples it from the context's rate to 16 kHz s16le and streams it over /v1/stream; the
finals in the DOM must equal, text and times, what the same recognizer makes of the very samples the
page sent, and those samples must be the WAV (an SNR check of the in-browser resampler). Upload:
#file/#upload with hot words gives the server's transcript, and the page's SRT/VTT/text downloads
are byte for byte the server's own response formats; a wrong API key shows the server's error. The
worklet's resampler, run in the page on tones, passes the speech band and stops what would alias. A
screenshot of the page after recording is kept (``page-after-recording.png`` in the test's tmp dir,
copied to /tmp/vasr-page.png), with ``sent.wav``, the audio the page streamed.

Skipped without chromium, chromedriver, selenium or the server's modules.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from test_export import exported_streaming

from vasr.kernels import edit_distance

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("vasr.serve.app")
pytest.importorskip("uvicorn")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver")

API_KEY = "page-test-key"
SPEECH = "s155_4.wav"            # "hòa bình"
UPLOAD = "s155_5.wav"            # "ngưi dân" greedy; the hot word makes it "người dân"
HOTWORDS = ("người dân:3", "bạn ơi")
TRAILING_SILENCE_S = 1.2         # after the speech of the fake microphone's file: an endpoint fires in it
SCREENSHOT_COPY = Path("/tmp/vasr-page.png")
WAIT_S = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """`vasr serve` in a subprocess: fp32, raw text, one worker, an API key; its base URL."""
    model_dir = exported_streaming()["model_dir"]
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vasr", "serve", str(model_dir), "--port", str(port),
                             "--fp32", "--raw", "--threads", "1", "--api-key", API_KEY],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"vasr serve did not start:\n{proc.stdout.read().decode(errors='replace')}")
            time.sleep(0.1)
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def microphone_wav(tmp_path_factory) -> Path:
    """What the fake microphone plays, in a loop: the speech, then silence."""
    import soundfile as sf

    from vasr.runtime.audio import load

    wave = np.concatenate([load(exported_streaming()["root"] / SPEECH),
                           np.zeros(int(TRAILING_SILENCE_S * 16000), np.float32)])
    path = tmp_path_factory.mktemp("mic") / "microphone.wav"
    sf.write(path, wave, 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone_wav, tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1000,1150", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone_wav}", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.downloads = downloads
    yield driver
    driver.quit()


def _recognizer(**decode):
    from vasr import Recognizer
    from vasr.runtime.decode import DecodeOptions
    from vasr.runtime.recognizer import MODEL_FP32, RecognizerOptions

    return Recognizer(exported_streaming()["model_dir"],
                      RecognizerOptions(model_file=MODEL_FP32, raw=True, threads=1, decode=DecodeOptions(**decode)))


def _open(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    browser.find_element(By.TAG_NAME, "details").click()       # the API key box
    browser.find_element(By.ID, "api-key").send_keys(API_KEY)


def _wait(browser, condition, what: str, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.05).until(lambda d: condition(d))
    except Exception:
        status = browser.execute_script("return document.getElementById('status').textContent")
        log = browser.get_log("browser") if hasattr(browser, "get_log") else []
        raise AssertionError(f"timed out waiting for {what}; #status: {status!r}; console: {log}") from None


def _finals(browser) -> list[tuple[str, float, float]]:
    return [tuple(r) for r in browser.execute_script(
        "return [...document.querySelectorAll('#finals li.final')].map("
        "li => [li.querySelector('.text').textContent, +li.dataset.start, +li.dataset.end])")]


def _status(browser) -> str:
    return browser.execute_script("return document.getElementById('status').textContent")


def _aligned_snr_db(sent: np.ndarray, source: np.ndarray, speech: int) -> float:
    """SNR of ``sent`` against ``source`` where a whole copy of the source's first ``speech`` samples
    lies in it (the fake microphone loops the file, with a few ms between the copies), aligned to a
    tenth of a sample (Chromium loops the file at the context's rate, so a copy may start between
    two 16 kHz samples)."""
    import scipy.signal

    corr = scipy.signal.correlate(sent, source[:speech], "valid", method="fft")
    lag = int(np.argmax(corr))
    part = sent[lag: lag + len(source)].astype(np.float64)
    spectrum = np.fft.rfft(source.astype(np.float64))
    omega = 2 * np.pi * np.fft.rfftfreq(len(source))
    best = None
    for delay in np.arange(-1.0, 1.01, 0.1):      # the source delayed by a fraction of a sample
        reference = np.fft.irfft(spectrum * np.exp(-1j * omega * delay), len(source))[: len(part)]
        gain = float(part @ reference / (reference @ reference))
        noise = part - gain * reference
        snr = float(10 * np.log10((reference @ reference) / (noise @ noise)))
        if best is None or snr > best[0]:
            best = snr, gain
    snr, gain = best
    assert 0.95 < gain < 1.05, f"the level changed by a factor {gain:.3f}"
    return snr


def test_recording_streams_16k_pcm_and_shows_the_recognizers_finals(server, browser, microphone_wav, tmp_path):
    import soundfile as sf
    from selenium.webdriver.common.by import By

    from vasr.runtime.stream import feed

    _open(browser, server)
    # every text #partial shows, to check that partials came (they are replaced within 320 ms)
    browser.execute_script(
        "window.partialsSeen = []; const p = document.getElementById('partial');"
        "new MutationObserver(() => partialsSeen.push(p.textContent))"
        ".observe(p, {childList: true, characterData: true, subtree: true});")
    browser.find_element(By.ID, "record").click()
    # the recording starts anywhere in the file's loop: the second final has a whole copy of the speech
    _wait(browser, lambda d: len(_finals(d)) >= 2, "two finals in #finals")
    assert "Hz → 16000 Hz" in _status(browser), _status(browser)
    rate = browser.execute_script("return vasrPage.contextRate()")
    browser.find_element(By.ID, "stop").click()
    _wait(browser, lambda d: "done" in _status(d), '"done" from the server')
    shown = _finals(browser)
    browser.find_element(By.CSS_SELECTOR, "#words-box summary").click()     # the words, for the screenshot
    screenshot = tmp_path / "page-after-recording.png"
    browser.save_screenshot(str(screenshot))
    shutil.copyfile(screenshot, SCREENSHOT_COPY)

    sent = np.array(browser.execute_script("return vasrPage.recording()"), np.int16)
    sf.write(tmp_path / "sent.wav", sent, 16000)          # artefact: what the page streamed
    source = sf.read(microphone_wav, dtype="float32")[0]
    # the worklet's resampling from the context's rate (Chromium plays the 16 kHz file at that rate)
    assert rate and rate >= 16000
    speech = len(source) - int(TRAILING_SILENCE_S * 16000)
    snr = _aligned_snr_db(sent.astype(np.float32) / 32768, source, speech)
    assert snr > 35, f"the page's 16 kHz audio differs from the microphone's file: SNR {snr:.1f} dB ({rate} Hz)"

    # the page shows exactly what the server's recognizer makes of the samples it sent, at their times
    recognizer = _recognizer()
    expected = feed(recognizer.stream(16000), (sent[i: i + 1600] for i in range(0, len(sent), 1600)))
    assert [(s.text, s.start, s.end) for s in expected if s.text] == shown
    # and what the recognizer makes of the file itself: "hòa bình" for the first copy; the fixture, trained
    # on clips that start at once, hears the loop's later copies (after an endpoint and a pause, so their
    # onsets fall elsewhere on the model's 40 ms grid) as "chòa bình", "cha bình" or "ch bình": within
    # three letters of it; the page's first copy starts wherever Chromium's loop was
    looped = [s.text for s in recognizer.transcribe_stream(("loop", np.tile(source, 3))).segments]
    assert looped[0] == "hòa bình" and len(looped) == 3
    texts = [text for text, _, _ in shown]
    assert texts[0].endswith("bình"), texts
    for text in looped[1:] + texts[1:]:
        assert text.endswith("bình") and edit_distance(text, "hòa bình") <= 3, (looped, texts)
    seen = browser.execute_script("return partialsSeen")
    assert any(seen), "no partial result was shown"
    grey = browser.execute_script("return getComputedStyle(document.getElementById('partial')).color")
    assert grey == "rgb(154, 161, 169)"
    assert browser.find_element(By.ID, "partial").text == ""
    assert browser.find_element(By.ID, "record").is_enabled() and not browser.find_element(By.ID, "stop").is_enabled()


def test_upload_with_hot_words_shows_the_servers_transcript_and_downloads_its_formats(server, browser):
    from selenium.webdriver.common.by import By

    from vasr.runtime.formats import srt, vtt

    path = exported_streaming()["root"] / UPLOAD
    assert _recognizer().transcribe(path).text == "ngưi dân"          # without the hot words
    transcript = _recognizer(beam=8, hotwords=(("người dân", 3.0), ("bạn ơi", None))).transcribe(path)
    assert transcript.text == "người dân"

    _open(browser, server)
    browser.find_element(By.ID, "hotwords").send_keys("\n".join(HOTWORDS))
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "upload").click()
    _wait(browser, lambda d: "done" in _status(d) or "error" in _status(d), "the upload's result")
    assert "done" in _status(browser), _status(browser)
    assert _finals(browser) == [(s.text, s.start, s.end) for s in transcript.segments]
    words = browser.execute_script(
        "return [...document.querySelectorAll('#words tbody tr')].map(r => [...r.cells].map(c => c.textContent))")
    assert words == [[w.text, f"{w.start:.2f}", f"{w.end:.2f}"] for w in transcript.words]

    for kind, expected in (("srt", srt(transcript)), ("vtt", vtt(transcript)), ("txt", transcript.text + "\n")):
        browser.find_element(By.ID, f"download-{kind}").click()
        target = browser.downloads / f"{Path(UPLOAD).stem}.{kind}"
        _wait(browser, lambda d: target.is_file() and target.stat().st_size > 0, f"the download of {target.name}")
        assert target.read_text(encoding="utf-8") == expected, kind


def test_a_wrong_api_key_is_shown_as_an_error(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(exported_streaming()["root"] / UPLOAD))
    browser.find_element(By.ID, "upload").click()
    _wait(browser, lambda d: "error" in _status(d), "an error in #status")
    assert "401" in _status(browser) and "API key" in _status(browser)
    browser.find_element(By.ID, "record").click()
    _wait(browser, lambda d: "error" in _status(d) and "API key" in _status(d), "the stream's error in #status")
    assert browser.find_element(By.ID, "record").is_enabled()


RESAMPLE_JS = """
const [rate, freq, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const run = () => {
  const n = rate, x = new Float32Array(n);                 // one second of a 0.5 amplitude tone
  for (let i = 0; i < n; i++) x[i] = 0.5 * Math.sin(2 * Math.PI * freq * i / rate);
  const r = new VasrResampler(rate, 16000), parts = [];
  for (let i = 0; i < n; i += 128) parts.push(r.push(x.subarray(i, i + 128)));   // render quanta
  parts.push(r.flush());
  const y = parts.flatMap((p) => Array.from(p));
  let signal = 0, error = 0, power = 0;
  for (let k = 1600; k < y.length - 1600; k++) {           // away from the edges
    const ideal = freq < 8000 ? 0.5 * Math.sin(2 * Math.PI * freq * k / 16000) : 0;
    signal += 0.125; error += (y[k] - ideal) ** 2; power += y[k] ** 2;
  }
  done([y.length, 10 * Math.log10(signal / error), 10 * Math.log10(power / signal)]);
};
if (window.VasrResampler) run();
else {
  const s = document.createElement("script");
  s.src = "recorder-worklet.js";
  s.onload = run;
  document.head.append(s);
}
"""


@pytest.mark.parametrize("rate", [48000, 44100])
def test_the_worklets_resampler_keeps_the_speech_band_and_stops_aliases(server, browser, rate):
    browser.get(server + "/")
    for freq in (300, 3000, 6400):
        count, snr_db, _ = browser.execute_async_script(RESAMPLE_JS, rate, freq)
        assert count == 16000 and snr_db > 75, (freq, count, snr_db)
    for freq in (8500, 12000, 20000):                   # above 8 kHz: would fold into the speech band
        count, _, level_db = browser.execute_async_script(RESAMPLE_JS, rate, freq)
        assert count == 16000 and level_db < -90, (freq, level_db)
