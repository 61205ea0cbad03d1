/** PNG encoding, synchronous (pngjs), so that displays can be built without awaiting. */
import { PNG } from "pngjs";

/** Encodes RGBA pixels (row-major, 4 bytes each) as a PNG. */
export function encodePng(rgba: Uint8Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return PNG.sync.write(png, { colorType: 6 });
}

export function pngDataUrl(png: Buffer): string {
  return `data:image/png;base64,${png.toString("base64")}`;
}
