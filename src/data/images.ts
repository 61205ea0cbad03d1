/**
 * `lab.data.imageFolder(path, { size, channels })`: the user's own pictures (PNG, JPEG, BMP,
 * GIF, TIFF via jimp), resized to size×size and converted to grey or RGB, values in [0, 1].
 *
 * Images in sub-folders get the sub-folder's name as their class. Files that are not images
 * (by extension) are skipped with one warning that counts them; an image that cannot be
 * decoded is an error naming the file; a missing or empty folder is an error naming the path.
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "node:fs";
import * as path from "node:path";
import { Dataset } from "./dataset";

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"]);

export interface ImageFolderOptions {
  /** Side of the square the images are resized to; default 32. */
  size?: number;
  /** 1 (grey) or 3 (RGB); default 3. */
  channels?: 1 | 3;
  /** Called with warnings (skipped files); default console.warn. */
  warn?: (message: string) => void;
}

function listImages(root: string): { files: string[]; classes: string[]; skipped: string[] } {
  const files: string[] = [];
  const skipped: string[] = [];
  const classes = new Set<string>();
  const walk = (dir: string, cls: string | null) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith(".")) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, cls ?? entry.name);
      else if (IMAGE_EXTENSIONS.has(path.extname(entry.name).toLowerCase())) {
        files.push(full);
        if (cls) classes.add(cls);
      } else skipped.push(full);
    }
  };
  walk(root, null);
  return { files, classes: [...classes].sort(), skipped };
}

/** Reads a folder of images into a dataset [n, size, size, channels] in [0, 1]. */
export async function imageFolder(folder: string, options: ImageFolderOptions = {}): Promise<Dataset> {
  const size = options.size ?? 32;
  const channels = options.channels ?? 3;
  const warn = options.warn ?? ((m: string) => console.warn(m));
  if (!Number.isInteger(size) || size < 1 || size > 1024) throw new Error(`imageFolder(): size must be an integer from 1 to 1024, got ${String(size)}.`);
  if (channels !== 1 && channels !== 3) throw new Error(`imageFolder(): channels must be 1 (grey) or 3 (RGB), got ${String(channels)}.`);
  const root = path.resolve(folder);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(root);
  } catch {
    throw new Error(`imageFolder(): the folder ${root} does not exist.`);
  }
  if (!stat.isDirectory()) throw new Error(`imageFolder(): ${root} is a file, not a folder of images.`);
  const { files, classes, skipped } = listImages(root);
  if (files.length === 0) {
    throw new Error(
      `imageFolder(): ${root} holds no images (looked for ${[...IMAGE_EXTENSIONS].join(" ")}${skipped.length ? `; found ${skipped.length} other file(s)` : ""}).`,
    );
  }
  if (skipped.length > 0) {
    warn(`imageFolder(): skipped ${skipped.length} file(s) that are not images, e.g. ${path.relative(root, skipped[0])}.`);
  }
  const { Jimp } = await import("jimp");
  // Classes only when every image sits in a class sub-folder.
  const labelled = classes.length > 0 && files.every((f) => path.relative(root, f).includes(path.sep));
  const pixels = new Float32Array(files.length * size * size * channels);
  const labels = new Int32Array(files.length);
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    let img: Awaited<ReturnType<typeof Jimp.read>>;
    try {
      img = await Jimp.read(file);
    } catch (e) {
      throw new Error(`imageFolder(): cannot decode ${file} (${(e as Error).message.split("\n")[0]}). Remove or replace the file.`);
    }
    img.resize({ w: size, h: size });
    const data = img.bitmap.data; // RGBA
    const base = i * size * size * channels;
    for (let p = 0; p < size * size; p++) {
      const r = data[4 * p] / 255;
      const g = data[4 * p + 1] / 255;
      const b = data[4 * p + 2] / 255;
      if (channels === 1) pixels[base + p] = 0.299 * r + 0.587 * g + 0.114 * b;
      else {
        pixels[base + 3 * p] = r;
        pixels[base + 3 * p + 1] = g;
        pixels[base + 3 * p + 2] = b;
      }
    }
    if (labelled) labels[i] = classes.indexOf(path.relative(root, file).split(path.sep)[0]);
  }
  return new Dataset({
    name: path.basename(root),
    kind: "images",
    x: tf.tensor4d(pixels, [files.length, size, size, channels]),
    labels: labelled ? tf.tensor1d(labels, "int32") : null,
    range: [0, 1],
    classes: labelled ? classes : undefined,
    recipe: { loader: "imageFolder", options: { path: root, size, channels } },
    source: `${files.length} images from ${root}, resized to ${size}×${size}, ${channels === 1 ? "grey" : "RGB"}`,
  });
}
