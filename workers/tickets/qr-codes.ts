/** A ticket token as a QR code: SVG for the app, PNG for email. */
import { PNG } from "pngjs";
import QRCode from "qrcode";

/** Medium error correction: survives a scuffed phone screen without making the code much denser. */
const QR_OPTIONS = { errorCorrectionLevel: "M", margin: 4 } as const;
/** Pixels per QR module in the PNG: about 300 px for a compact ticket code (version 6, 41 modules), crisp on paper and screens. */
const PNG_SCALE = 6;
/** PNG filter type 2, "Up": each byte minus the one above it. */
const PNG_FILTER_UP = 2;

/** The QR version (1-40; a version-v code is 17 + 4v modules wide) that `text` takes at the error correction we print with. */
export function qrVersion(text: string): number {
  return QRCode.create(text, QR_OPTIONS).version;
}

/** The token as a QR code, an SVG document (for the app). */
export function ticketQrSvg(token: string): Promise<string> {
  return QRCode.toString(token, { ...QR_OPTIONS, type: "svg" });
}

/**
 * The token as a QR code, a PNG `data:` URL and its width in pixels (for
 * email). Encoded by qrcode; drawn with pngjs because qrcode's own PNG
 * renderer is in its Node build and its browser build needs a canvas.
 *
 * Drawn a module row at a time into 8-bit grey (one byte a pixel), each
 * pixel row after the first of a module row copied from it, and written with
 * PNG's Up filter: the rows of a module row are identical, so they filter to
 * zeros and deflate to almost nothing, with no trial of every filter per row.
 * Drawing pixel by pixel in RGBA with adaptive filtering took 25 ms a code
 * (16% of the Worker's CPU in the sellout bench); this takes about 3 ms and
 * makes a smaller image.
 */
export function ticketQrPng(token: string): { dataUrl: string; size: number } {
  const modules = QRCode.create(token, QR_OPTIONS).modules;
  const margin = QR_OPTIONS.margin;
  const width = modules.size + 2 * margin;
  const side = width * PNG_SCALE;
  const grey = { colorType: 0, inputColorType: 0, inputHasAlpha: false, filterType: PNG_FILTER_UP } as const;
  const png = new PNG({ width: side, height: side, ...grey });
  const pixels = png.data;
  for (let moduleRow = 0; moduleRow < width; moduleRow++) {
    const start = moduleRow * PNG_SCALE * side;
    pixels.fill(255, start, start + side);
    const row = moduleRow - margin;
    if (row >= 0 && row < modules.size) {
      for (let col = 0; col < modules.size; col++) {
        const x = start + (col + margin) * PNG_SCALE;
        if (modules.get(row, col) === 1) pixels.fill(0, x, x + PNG_SCALE);
      }
    }
    for (let copy = 1; copy < PNG_SCALE; copy++) pixels.copy(pixels, start + copy * side, start, start + side);
  }
  return { dataUrl: `data:image/png;base64,${PNG.sync.write(png, grey).toString("base64")}`, size: side };
}
