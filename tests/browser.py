"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe): what a
person would see of a page, with no browser download and no websocket library. Debian's
`chromium` package provides the browser; .ci/run installs it."""
import base64
import fcntl
import io
import json
import os
import pathlib
import select
import shutil
import subprocess
import tempfile
import time

import numpy as np
from PIL import Image

BINARY_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str:
  """The browser's path; a clear failure (never a skip) when it is not installed."""
  for name in (os.environ.get("CHROMIUM", ""), *BINARY_NAMES):
    path = shutil.which(name) if name else None
    if path:
      return path
  raise RuntimeError("headless Chromium not found: install it (apt-get install -y chromium; "
                     ".ci/run does) or point CHROMIUM at the binary")


class Browser:
  """One headless Chromium and one page (a flattened session on a new target)."""

  def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 60.0):
    self.timeout = timeout
    self.events: list[dict] = []
    self._next_id = 0
    self._buffer = b""
    self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
    to_browser_r, self._to_browser = os.pipe()
    self._from_browser, from_browser_w = os.pipe()

    def pipes_as_3_and_4() -> None:  # the protocol's fds: commands in on 3, replies out on 4
      high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_r, from_browser_w)]
      for fd, target in zip(high, (3, 4)):  # via fds >= 10: neither pipe is 3 or 4 any more
        os.dup2(fd, target)

    self.proc = subprocess.Popen(
        [find_chromium(), "--headless", "--remote-debugging-pipe", "--no-sandbox",
         "--disable-gpu", "--no-first-run", "--hide-scrollbars", "--mute-audio",
         f"--user-data-dir={self._profile}", "about:blank"],
        preexec_fn=pipes_as_3_and_4, close_fds=False, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_browser_r)
    os.close(from_browser_w)
    target = self.call("Target.createTarget", url="about:blank")["targetId"]
    self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
      self.call(f"{domain}.enable", session=True)
    self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
              deviceScaleFactor=1, mobile=False)

  def close(self) -> None:
    self.proc.kill()
    self.proc.wait()
    os.close(self._to_browser)
    os.close(self._from_browser)
    shutil.rmtree(self._profile, ignore_errors=True)

  def __enter__(self) -> "Browser":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def _read_message(self, deadline: float) -> dict:
    while b"\0" not in self._buffer:
      left = deadline - time.monotonic()
      if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
        raise TimeoutError("Chromium did not answer in time")
      chunk = os.read(self._from_browser, 1 << 20)
      if not chunk:
        raise RuntimeError("Chromium closed the protocol pipe")
      self._buffer += chunk
    message, self._buffer = self._buffer.split(b"\0", 1)
    return json.loads(message)

  def call(self, method: str, session: bool = False, **params) -> dict:
    """Sends one command and returns its result; events that arrive meanwhile are kept."""
    self._next_id += 1
    message = {"id": self._next_id, "method": method, "params": params}
    if session:
      message["sessionId"] = self.session
    os.write(self._to_browser, json.dumps(message).encode() + b"\0")
    deadline = time.monotonic() + self.timeout
    while True:
      reply = self._read_message(deadline)
      if reply.get("id") == self._next_id:
        if "error" in reply:
          raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]
      self.events.append(reply)

  def wait_for(self, method: str) -> dict:
    deadline = time.monotonic() + self.timeout
    while True:
      for event in self.events:
        if event.get("method") == method:
          self.events.remove(event)
          return event
      self.events.append(self._read_message(deadline))

  def open(self, path: pathlib.Path) -> None:
    self.call("Page.navigate", session=True, url=pathlib.Path(path).resolve().as_uri())
    self.wait_for("Page.loadEventFired")

  def evaluate(self, expression: str):
    """The value of a JS expression (a promise is awaited); a thrown error raises here."""
    result = self.call("Runtime.evaluate", session=True, expression=expression,
                       awaitPromise=True, returnByValue=True)
    if "exceptionDetails" in result:
      raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
    return result["result"].get("value")

  def screenshot(self) -> np.ndarray:
    """The viewport as an RGB array, as a person sees it now."""
    data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))

  def click(self, x: float, y: float) -> None:
    """A real mouse click at viewport coordinates (press and release)."""
    for kind in ("mousePressed", "mouseReleased"):
      self.call("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left",
                clickCount=1)

  def errors(self) -> list[str]:
    """Console errors, uncaught exceptions and failed loads the page has reported so far."""
    out = []
    for event in self.events:
      method, params = event.get("method"), event.get("params", {})
      if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
        out.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
      elif method == "Runtime.exceptionThrown":
        out.append(params["exceptionDetails"].get("text", "exception"))
      elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
        out.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}")
    return out


_SEE_SCANS = """(async () => {
  const scans = [];
  for (const s of document.querySelectorAll('section.scan')) {
    const images = [...s.querySelectorAll('img')];
    for (const i of images) {  // lazy images load as they scroll into view
      if (i.complete) continue;
      i.scrollIntoView();
      await new Promise(done => { i.addEventListener('load', done);
        i.addEventListener('error', done); setTimeout(done, 10000); });
    }
    scans.push({name: s.querySelector('h2').innerText, height: s.getBoundingClientRect().height,
                images: images.length, decoded: images.filter(i => i.naturalWidth > 0).length,
                lesions: s.querySelectorAll('table.lesions tbody tr').length});
  }
  window.scrollTo(0, 0);
  return scans;
})()"""


def rect(browser: Browser, selector: str) -> dict:
  """The element's box in the viewport after scrolling it into view (the page's sticky bar is not
  over it)."""
  return browser.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
    e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
    return {{x: r.x, y: r.y, width: r.width, height: r.height}}; }})()""")


def crop(pixels: np.ndarray, box: dict) -> np.ndarray:
  y, x = int(box["y"]), int(box["x"])
  return pixels[y:y + int(box["height"]), x:x + int(box["width"])]


def look_at_report(browser: Browser, path: pathlib.Path) -> dict:
  """Opens a report.html and reports what a person sees: each scan section (name, height, images
  and how many decoded, lesion rows) and the first slice with and without the overlay, switched
  by clicking the page's overlay checkbox."""
  browser.open(path)
  scans = browser.evaluate(_SEE_SCANS)
  figure = rect(browser, "section.scan figure .view")
  with_overlay = crop(browser.screenshot(), figure)
  box = browser.evaluate("""(() => { const r = document.getElementById('overlay')
    .getBoundingClientRect(); return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()""")
  browser.click(box["x"], box["y"])
  without_overlay = crop(browser.screenshot(), figure)
  browser.click(box["x"], box["y"])
  again = crop(browser.screenshot(), figure)
  return {"scans": scans, "with_overlay": with_overlay, "without_overlay": without_overlay,
          "overlay_again": again, "errors": browser.errors()}
