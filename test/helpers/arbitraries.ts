import fc from 'fast-check';

/**
 * Any text: Unicode graphemes (non-BMP, combining) and C0/C1 control characters. Cheaper than
 * fast-check's 'binary' unit, whose first use costs most of a second.
 */
export const anyText = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
      fc.integer({ min: 0, max: 0x9f }).map((code) => String.fromCharCode(code)),
    ),
    maxLength,
  });
