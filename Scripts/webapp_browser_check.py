#!/usr/bin/env python3
"""Drives the web app in a real browser: Debian's headless Chromium with a fake camera that plays a sample video,
through Selenium and chromium-driver. Used by AnnotationServerTests.testPageInARealBrowser (and usable by hand):

    /usr/bin/python3 Scripts/webapp_browser_check.py --url http://127.0.0.1:8080/ --video sample.mp4 --screenshots DIR

Checks that (1) the webcam view shows a labelled face box within a few seconds, read from the overlay's data
(#live-faces), and (2) the upload form takes a video through to the player with its timeline. Saves a screenshot
of each view, the sample's face blurred (only our page is shown sharp). Exit 0: both worked; 77: Chromium could not start here (the caller skips, printing why); 1: a check
failed (the reason on stderr). With server cameras (--camera), (3) the cameras view shows each with a labelled
face.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--video", required=True, help="a face video: the fake camera and the upload")
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError as error:
        print(f"selenium missing ({error}); Scripts/setup.sh installs python3-selenium", file=sys.stderr)
        return 77

    work = tempfile.mkdtemp()
    camera = os.path.join(work, "camera.y4m")
    # Chromium's fake camera plays a Y4M file in a loop.
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", args.video, "-t", "6",
                    "-vf", "scale=640:-2", "-pix_fmt", "yuv420p", camera], check=True)
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}", "--autoplay-policy=no-user-gesture-required"]:
        options.add_argument(flag)
    for binary in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]:
        if os.path.exists(binary):
            options.binary_location = binary
            break
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    except Exception as error:  # no display libraries, no binary, sandbox refusal...
        print(f"Chromium could not start: {str(error).splitlines()[0]}", file=sys.stderr)
        return 77

    try:
        driver.get(args.url)
        # 1. The webcam view: a labelled face box within a few seconds.
        driver.find_element(By.ID, "camera-start").click()
        deadline = time.time() + 30
        faces = []
        while time.time() < deadline:
            text = driver.execute_script("return document.getElementById('live-faces').textContent")
            faces = [face for face in json.loads(text or "[]") if face.get("emotion")]
            if faces:
                break
            time.sleep(0.2)
        if not faces:
            status = driver.find_element(By.ID, "live-status").text
            print(f"no labelled face on the webcam view within 30 s (status: {status})", file=sys.stderr)
            driver.save_screenshot(os.path.join(args.screenshots, "webapp-webcam-failed.png"))
            return 1
        time.sleep(1.5)  # a few more frames, so the chart has a history to show
        # The sample's face is third-party media: the screenshots blur the video itself, not our overlay.
        driver.execute_script("document.getElementById('camera').style.filter = 'blur(10px)'")
        time.sleep(0.5)
        driver.save_screenshot(os.path.join(args.screenshots, "webapp-webcam.png"))
        print(json.dumps({"webcam_faces": faces}))
        driver.find_element(By.ID, "camera-stop").click()

        # 2. The upload form, through to the player and its timeline.
        driver.find_element(By.ID, "tab-jobs").click()
        driver.find_element(By.ID, "upload-file").send_keys(os.path.abspath(args.video))
        driver.find_element(By.ID, "upload-submit").click()
        deadline = time.time() + args.timeout
        ready = False
        while time.time() < deadline:
            ready = driver.execute_script(
                "const v = document.getElementById('job-video');"
                "return !!v && v.readyState >= 1 && document.getElementById('job-timeline').height > 0")
            if ready:
                break
            time.sleep(0.5)
        if not ready:
            rows = driver.execute_script("return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.innerText)")
            print(f"the uploaded video did not reach the player within {args.timeout:.0f} s (jobs: {rows})", file=sys.stderr)
            driver.save_screenshot(os.path.join(args.screenshots, "webapp-upload-failed.png"))
            return 1
        driver.execute_script("const v = document.getElementById('job-video'); v.currentTime = 1.0; v.style.filter = 'blur(10px)'")
        time.sleep(1)
        driver.save_screenshot(os.path.join(args.screenshots, "webapp-upload.png"))
        duration = driver.execute_script("return document.getElementById('job-video').duration")
        print(json.dumps({"uploaded_video_duration": duration}))

        # 3. Server cameras, when the server has any (--camera): each shown with its labelled faces.
        if driver.execute_script("return !document.getElementById('tab-cameras').classList.contains('hidden')"):
            driver.find_element(By.ID, "tab-cameras").click()
            deadline = time.time() + 30
            shown = []
            while time.time() < deadline:
                shown = driver.execute_script(
                    "return [...document.querySelectorAll('.camera')].filter(c => c.querySelector('img').naturalWidth > 0)"
                    ".map(c => JSON.parse(c.dataset.faces || '[]').filter(f => f.emotion).length)")
                if shown and all(count > 0 for count in shown):
                    break
                time.sleep(0.3)
            if not shown or not all(count > 0 for count in shown):
                print(f"the cameras view showed no labelled face within 30 s ({shown})", file=sys.stderr)
                driver.save_screenshot(os.path.join(args.screenshots, "webapp-cameras-failed.png"))
                return 1
            time.sleep(2)  # a chart history
            driver.execute_script("for (const i of document.querySelectorAll('.camera img')) i.style.filter = 'blur(8px)'")
            time.sleep(0.5)
            driver.save_screenshot(os.path.join(args.screenshots, "webapp-cameras.png"))
            print(json.dumps({"cameras_faces": shown}))
        return 0
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
