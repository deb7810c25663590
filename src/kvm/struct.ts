/**
 * C struct layouts, declared once: a declaration gives the size, each
 * field's offset (C alignment rules, as the kernel's headers compile on
 * x86-64), a typed `decode` and an `encode` that fills a buffer.
 */

type Scalar = 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64';
type ScalarValue<S extends Scalar> = S extends 'u64' | 'i64' ? bigint : number;

export interface ArrayField<E extends Scalar | StructType<any>> {
  readonly of: E;
  readonly length: number;
}
export type Field = Scalar | StructType<any> | ArrayField<Scalar | StructType<any>>;

type ElementValue<E> = E extends Scalar ? ScalarValue<E> : E extends StructType<infer T> ? T : never;
type FieldValue<F> = F extends 'u8' | 'u16' | 'u32' | 'i32' | 'u64' | 'i64'
  ? ScalarValue<F>
  : F extends StructType<infer T>
    ? T
    : F extends ArrayField<infer E>
      ? E extends 'u8'
        ? Uint8Array
        : ElementValue<E>[]
      : never;

export type StructValue<D extends Record<string, Field>> = { [K in keyof D]: FieldValue<D[K]> };

const scalarSize: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8 };

export function array<E extends Scalar | StructType<any>>(of: E, length: number): ArrayField<E> {
  return { of, length };
}

function isArray(f: Field): f is ArrayField<Scalar | StructType<any>> {
  return typeof f === 'object' && 'of' in f;
}

function elementSize(e: Scalar | StructType<any>): number {
  return typeof e === 'string' ? scalarSize[e] : e.size;
}
function elementAlign(e: Scalar | StructType<any>): number {
  return typeof e === 'string' ? scalarSize[e] : e.align;
}

export class StructType<T> {
  readonly size: number;
  readonly align: number;
  readonly offsets: { readonly [K in keyof T]: number };
  private readonly fields: [string, Field, number][] = [];

  constructor(
    readonly name: string,
    definition: Record<string, Field>,
    options: { packed?: boolean; size?: number } = {},
  ) {
    let offset = 0;
    let align = 1;
    const offsets: Record<string, number> = {};
    for (const [key, field] of Object.entries(definition)) {
      const element = isArray(field) ? field.of : field;
      const a = options.packed ? 1 : elementAlign(element);
      offset = Math.ceil(offset / a) * a;
      offsets[key] = offset;
      this.fields.push([key, field, offset]);
      offset += elementSize(element) * (isArray(field) ? field.length : 1);
      align = Math.max(align, a);
    }
    this.align = align;
    this.size = options.size ?? Math.ceil(offset / align) * align;
    if (this.size < offset) throw new Error(`${name}: fields need ${offset} bytes, more than its size ${this.size}`);
    this.offsets = offsets as { [K in keyof T]: number };
  }

  /** A zeroed buffer of this struct's size (plus `extra` bytes for a trailing flexible array). */
  alloc(extra = 0): Uint8Array {
    return new Uint8Array(this.size + extra);
  }

  decode(buf: Uint8Array, at = 0): T {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const out: Record<string, unknown> = {};
    for (const [key, field, offset] of this.fields) {
      if (isArray(field)) {
        if (field.of === 'u8') {
          out[key] = buf.slice(at + offset, at + offset + field.length);
        } else {
          const size = elementSize(field.of);
          out[key] = Array.from({ length: field.length }, (_, i) => readElement(view, buf, at + offset + i * size, field.of));
        }
      } else {
        out[key] = readElement(view, buf, at + offset, field);
      }
    }
    return out as T;
  }

  /** Writes the given fields into buf (fields left out keep their bytes). */
  encode(value: Partial<T>, buf: Uint8Array = this.alloc(), at = 0): Uint8Array {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (const [key, field, offset] of this.fields) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      if (isArray(field)) {
        if (field.of === 'u8') {
          buf.set((v as Uint8Array).subarray(0, field.length), at + offset);
        } else {
          const size = elementSize(field.of);
          (v as unknown[]).slice(0, field.length).forEach((e, i) => writeElement(view, buf, at + offset + i * size, field.of, e));
        }
      } else {
        writeElement(view, buf, at + offset, field, v);
      }
    }
    return buf;
  }
}

function readElement(view: DataView, buf: Uint8Array, at: number, e: Scalar | StructType<any>): unknown {
  switch (e) {
    case 'u8': return view.getUint8(at);
    case 'u16': return view.getUint16(at, true);
    case 'u32': return view.getUint32(at, true);
    case 'i32': return view.getInt32(at, true);
    case 'u64': return view.getBigUint64(at, true);
    case 'i64': return view.getBigInt64(at, true);
    default: return e.decode(buf, at);
  }
}

function writeElement(view: DataView, buf: Uint8Array, at: number, e: Scalar | StructType<any>, v: unknown): void {
  switch (e) {
    case 'u8': view.setUint8(at, v as number); break;
    case 'u16': view.setUint16(at, v as number, true); break;
    case 'u32': view.setUint32(at, (v as number) >>> 0, true); break;
    case 'i32': view.setInt32(at, v as number, true); break;
    case 'u64': view.setBigUint64(at, BigInt.asUintN(64, BigInt(v as bigint)), true); break;
    case 'i64': view.setBigInt64(at, BigInt.asIntN(64, BigInt(v as bigint)), true); break;
    default: e.encode(v as object, buf, at);
  }
}

export function struct<D extends Record<string, Field>>(
  name: string,
  definition: D,
  options?: { packed?: boolean; size?: number },
): StructType<StructValue<D>> {
  return new StructType<StructValue<D>>(name, definition, options);
}
