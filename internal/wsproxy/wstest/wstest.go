// Package wstest writes raw WebSocket client frames, for tests that send
// what a well-behaved WebSocket library never would (unmasked frames,
// lengths the payload does not match, lengths up to 2^64-1).
//
// It is used by tests only; it has no dependencies beyond the standard
// library, so any package's tests may import it.
package wstest

import "encoding/binary"

// Key is the masking key of the frames this package writes.
var Key = [4]byte{0x12, 0x34, 0x56, 0x78}

// Header returns a client frame header: fin set, opcode, a payload length
// claim of length (in the 7-, 16- or 64-bit form RFC 6455 §5.2 gives it),
// and, when masked, the mask bit and Key.
func Header(opcode byte, masked bool, length uint64) []byte {
	b := []byte{0x80 | opcode, 0}
	switch {
	case length < 126:
		b[1] = byte(length)
	case length <= 0xffff:
		b[1] = 126
		b = binary.BigEndian.AppendUint16(b, uint16(length))
	default:
		b[1] = 127
		b = binary.BigEndian.AppendUint64(b, length)
	}
	if masked {
		b[1] |= 0x80
		b = append(b, Key[:]...)
	}
	return b
}

// Frame returns Header(opcode, masked, length) followed by body, masked
// with Key when masked. length need not be len(body).
func Frame(opcode byte, masked bool, length uint64, body []byte) []byte {
	b := Header(opcode, masked, length)
	start := len(b)
	b = append(b, body...)
	if masked {
		for i := range body {
			b[start+i] ^= Key[i%4]
		}
	}
	return b
}
