// The compressions the destination offers. @platformatic/kafka does all four itself: gzip and
// zstd with node:zlib (zstd in node:zlib since Node.js 22.15 / 23.8), LZ4 (Kafka's LZ4 frame)
// with the WebAssembly inside @platformatic/wasm-utils, from the npm registry with nothing to
// compile or download at install.
export type Compression = 'none' | 'gzip' | 'lz4' | 'zstd'
