/* Byte classes for roundtrip/_speedups_c.pyx: one 256-entry table, one bit per class.
 *
 * RT_TCHAR     RFC 9110 5.6.2 tchar: "!#$%&'*+-.^_`|~", DIGIT, ALPHA (field names, methods).
 * RT_REQ_BAD   bytes a request field value may not hold (Go's httpguts.ValidHeaderFieldValue):
 *              the CTLs 0x00-0x1F except HTAB, and DEL (RFC 9110 5.5: never CR, LF or NUL).
 * RT_WIRE_BAD  bytes h11 refuses inside a received field value or reason phrase: NUL and the
 *              whitespace Python's bytes regex "\s" knows besides SP/HTAB (LF, VT, FF, CR).
 * RT_HEX       HEXDIG (RFC 9112 7.1 chunk-size).
 * RT_OWS       SP / HTAB (RFC 9110 5.6.3 OWS).
 *
 * Plain initialisers only (no range designators) so that MSVC builds it too.
 */
#ifndef RT_BYTES_H
#define RT_BYTES_H

#define RT_TCHAR 1
#define RT_REQ_BAD 2
#define RT_WIRE_BAD 4
#define RT_HEX 8
#define RT_OWS 16

static const unsigned char rt_class[256] = {
     6,  2,  2,  2,  2,  2,  2,  2,  2, 16,  6,  6,  6,  6,  2,  2,  /* 0x00 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x10 */
    16,  1,  0,  1,  1,  1,  1,  1,  0,  0,  1,  1,  0,  1,  1,  0,  /* 0x20 */
     9,  9,  9,  9,  9,  9,  9,  9,  9,  9,  0,  0,  0,  0,  0,  0,  /* 0x30 */
     0,  9,  9,  9,  9,  9,  9,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x40 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  0,  0,  0,  1,  1,  /* 0x50 */
     1,  9,  9,  9,  9,  9,  9,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x60 */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  0,  1,  0,  1,  2,  /* 0x70 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x80 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x90 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xA0 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xB0 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xC0 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xD0 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xE0 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xF0 */
};

/* Value of a byte already known to be RT_HEX. */
static inline unsigned int rt_hexval(unsigned char c) {
    return c <= '9' ? (unsigned int)(c - '0') : (unsigned int)((c | 0x20) - 'a' + 10);
}

#endif
