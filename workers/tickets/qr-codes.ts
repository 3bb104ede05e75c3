/** A ticket token as a QR code: SVG for the app, PNG for email. */
import { PNG } from "pngjs";
import QRCode from "qrcode";

/** Medium error correction: survives a scuffed phone screen without making the code much denser. */
const QR_OPTIONS = { errorCorrectionLevel: "M", margin: 4 } as const;
/** Pixels per QR module in the PNG: about 300 px for a compact ticket code (version 6, 41 modules), crisp on paper and screens. */
const PNG_SCALE = 6;

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
 */
export function ticketQrPng(token: string): { dataUrl: string; size: number } {
  const modules = QRCode.create(token, QR_OPTIONS).modules;
  const margin = QR_OPTIONS.margin;
  const side = (modules.size + 2 * margin) * PNG_SCALE;
  const png = new PNG({ width: side, height: side, colorType: 0, inputHasAlpha: true });
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const row = Math.floor(y / PNG_SCALE) - margin;
      const col = Math.floor(x / PNG_SCALE) - margin;
      const dark = row >= 0 && col >= 0 && row < modules.size && col < modules.size && modules.get(row, col) === 1;
      const offset = (y * side + x) * 4;
      png.data.fill(dark ? 0 : 255, offset, offset + 3);
      png.data[offset + 3] = 255;
    }
  }
  return { dataUrl: `data:image/png;base64,${PNG.sync.write(png).toString("base64")}`, size: side };
}
