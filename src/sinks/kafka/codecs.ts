// zstd and LZ4 for KafkaJS, which ships only gzip. Both are JavaScript/WebAssembly from the npm
// registry, with nothing to compile or download at install (native zstd/lz4 bindings fetch
// prebuilt binaries from outside the registry, or need a compiler). Kafka's LZ4 is the LZ4 frame
// format with independent blocks (lz4-frame.ts).
import kafkajs from 'kafkajs'
import { init as zstdInit, compress as zstdCompress, decompress as zstdDecompress } from '@bokuweb/zstd-wasm'
import lz4 from 'lz4js'
import { lz4Frame } from './lz4-frame.js'

export type Compression = 'none' | 'gzip' | 'lz4' | 'zstd'

/** zstd level 3: the library default, most of the ratio for a fraction of the higher levels' CPU. */
const ZSTD_LEVEL = 3

// KafkaJS is CommonJS without named exports Node can detect.
const { CompressionCodecs, CompressionTypes } = kafkajs

let registered: Promise<void> | null = null

/** Registers the codecs once per process; the zstd WebAssembly module is compiled on first use. */
export function registerCodecs (): Promise<void> {
  registered ??= (async () => {
    await zstdInit()
    CompressionCodecs[CompressionTypes.ZSTD] = () => ({
      compress: async (encoder: { buffer: Buffer }) => Buffer.from(zstdCompress(encoder.buffer, ZSTD_LEVEL)),
      decompress: async (buffer: Buffer) => Buffer.from(zstdDecompress(buffer))
    })
    CompressionCodecs[CompressionTypes.LZ4] = () => ({
      compress: async (encoder: { buffer: Buffer }) => lz4Frame(encoder.buffer),
      decompress: async (buffer: Buffer) => Buffer.from(lz4.decompress(buffer))
    })
  })()
  return registered
}

export function compressionType (c: Compression): kafkajs.CompressionTypes {
  switch (c) {
    case 'gzip': return CompressionTypes.GZIP
    case 'lz4': return CompressionTypes.LZ4
    case 'zstd': return CompressionTypes.ZSTD
    default: return CompressionTypes.None
  }
}
