package session

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Codec encodes the results of commands so that they can be recorded in
// snapshots. Decode(Encode(v)) must answer a duplicate as v answered the
// original.
type Codec interface {
	Encode(result any) ([]byte, error)
	Decode(b []byte) (any, error)
}

// DefaultCodec records nil, []byte, string, bool, int, int64, uint64 and
// errors. An error comes back as an error with the same message, wrapping
// ErrExpired, ErrStale or ErrResultNotKept when the original did (other
// sentinel identities are not kept: give your own Codec if clients test
// them with errors.Is).
type DefaultCodec struct{}

const (
	tagNil byte = iota
	tagBytes
	tagString
	tagBool
	tagInt
	tagInt64
	tagUint64
	tagError
)

// known are the package's errors, which keep their identity.
var known = []error{ErrExpired, ErrStale, ErrResultNotKept}

// Encode implements Codec.
func (DefaultCodec) Encode(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte{tagNil}, nil
	case []byte:
		return append([]byte{tagBytes}, v...), nil
	case string:
		return append([]byte{tagString}, v...), nil
	case bool:
		if v {
			return []byte{tagBool, 1}, nil
		}
		return []byte{tagBool, 0}, nil
	case int:
		return binary.AppendVarint([]byte{tagInt}, int64(v)), nil
	case int64:
		return binary.AppendVarint([]byte{tagInt64}, v), nil
	case uint64:
		return binary.AppendUvarint([]byte{tagUint64}, v), nil
	case error:
		k := byte(0)
		for i, e := range known {
			if errors.Is(v, e) {
				k = byte(i + 1)
			}
		}
		return append([]byte{tagError, k}, v.Error()...), nil
	}
	return nil, fmt.Errorf("session: DefaultCodec cannot record a result of type %T", v)
}

// Decode implements Codec.
func (DefaultCodec) Decode(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errors.New("session: empty recorded result")
	}
	body := b[1:]
	switch b[0] {
	case tagNil:
		return nil, nil
	case tagBytes:
		return append([]byte(nil), body...), nil
	case tagString:
		return string(body), nil
	case tagBool:
		return len(body) == 1 && body[0] == 1, nil
	case tagInt, tagInt64:
		v, n := binary.Varint(body)
		if n <= 0 {
			break
		}
		if b[0] == tagInt {
			return int(v), nil
		}
		return v, nil
	case tagUint64:
		v, n := binary.Uvarint(body)
		if n <= 0 {
			break
		}
		return v, nil
	case tagError:
		if len(body) == 0 {
			break
		}
		msg := string(body[1:])
		if k := int(body[0]); k > 0 && k <= len(known) {
			return &recordedError{msg: msg, is: known[k-1]}, nil
		}
		return errors.New(msg), nil
	}
	return nil, fmt.Errorf("session: recorded result with tag %d does not decode", b[0])
}

// recordedError is an error read back from a recording, keeping the
// identity of the package's sentinels.
type recordedError struct {
	msg string
	is  error
}

func (e *recordedError) Error() string { return e.msg }
func (e *recordedError) Unwrap() error { return e.is }
