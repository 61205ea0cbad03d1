/** Datasets, offline and seeded: 2-D toys, MNIST, Fashion-MNIST, your images, names. */
export { Dataset } from "./dataset";
export type { Batch, BatchOptions, DatasetKind, Vocabulary } from "./dataset";
export { ring8, grid25, moons, circles, spiral, checkerboard, pinwheel, points } from "./toys";
export type { ToyOptions, NoisyToyOptions } from "./toys";
export { mnist, fashionMnist, FASHION_CLASSES, MNIST_TRAIN_SHARE } from "./mnist";
export type { ImageSetOptions, Split } from "./mnist";
export { imageFolder } from "./images";
export type { ImageFolderOptions } from "./images";
export { names, textDataset, vocabulary, pixelStrings, stringsToImages, NAMES_TRAIN_SHARE } from "./text";
export type { TextOptions } from "./text";
