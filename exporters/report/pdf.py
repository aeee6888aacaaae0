"""The PDF, converted from the docx by LibreOffice headless (Debian ``libreoffice-writer-nogui``): one
layout for both, so what is printed is what was reviewed in Word; Liberation Serif stands in for
Times New Roman with the same metrics and the Vietnamese glyphs."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CONVERT_TIMEOUT = 180


class PdfError(RuntimeError):
    pass


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def from_docx(docx: Path, output: Path) -> None:
    binary = soffice()
    if binary is None:
        raise PdfError("PDF needs LibreOffice (Debian package libreoffice-writer-nogui); "
                       "or choose --format docx")
    with tempfile.TemporaryDirectory(prefix="egov-report-") as tmp:
        profile = Path(tmp) / "profile"  # its own profile: a desktop LibreOffice that is open does not block it
        try:
            done = subprocess.run([binary, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
                                   "--convert-to", "pdf", "--outdir", tmp, str(docx)],
                                  capture_output=True, text=True, timeout=CONVERT_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"LibreOffice did not convert {docx.name} within {CONVERT_TIMEOUT} s") from None
        made = Path(tmp) / (docx.stem + ".pdf")
        if done.returncode != 0 or not made.exists():
            raise PdfError(f"LibreOffice could not convert {docx.name}: {(done.stderr or done.stdout).strip()[:300]}")
        shutil.move(str(made), output)
