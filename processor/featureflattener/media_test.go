package featureflattener

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestMediaSignatures(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"png", pngHead(), "png"},
		{"jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"), "jpeg"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x80\x00"), "gif"},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), "webp"},
		{"wav", wavHead(), "wav"},
		{"avi", []byte("RIFF\x24\x00\x00\x00AVI LIST"), "avi"},
		{"bmp", append([]byte("BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00"), 1, 0), "bmp"},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), "tiff"},
		{"mp3 id3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), "mp3"},
		{"mp3 frame", []byte{0xff, 0xfb, 0x90, 0x64, 0, 0}, "mp3"},
		{"ogg", []byte("OggS\x00\x02\x00\x00"), "ogg"},
		{"flac", []byte("fLaC\x00\x00\x00\x22"), "flac"},
		{"mp4", mp4Head(), "mp4"},
		{"webm", []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81"), "matroska"},
		{"text", []byte("hello, world, this is text"), ""},
		{"two letters BM", []byte("BMW is a car maker"), ""},
		{"mp3 sync with reserved rate", []byte{0xff, 0xfb, 0x9c, 0, 0, 0}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mediaSignature(tt.head); got != tt.want {
				t.Fatalf("mediaSignature = %q, want %q", got, tt.want)
			}
			padded := append(append([]byte{}, tt.head...), make([]byte, 16)...) // reach the minimum length
			if got := isBase64Media(base64.StdEncoding.EncodeToString(padded)); got != (tt.want != "") {
				t.Fatalf("isBase64Media = %v", got)
			}
		})
	}
}

func TestBase64MediaFalsePositives(t *testing.T) {
	for _, s := range []string{
		"//www.example.com/image.png",
		"SGVsbG8gd29ybGQsIHRoaXMgaXMgdGV4dA==", // "Hello world, this is text"
		"ThisIsOneLongWordWithoutSpaces",
		"0123456789abcdef0123456789abcdef", // a hex digest
		"3f2504e0-4f89-11d3-9a0c-0305e82c3301",
		strings.Repeat("A", 100),
		"iVBORw0KGgo", // PNG signature but under the minimum length
	} {
		if isBase64Media(s) {
			t.Errorf("%q detected as media", s)
		}
	}
}

func TestDataURI(t *testing.T) {
	for s, want := range map[string]bool{
		"data:image/png;base64,iVBOR":    true,
		"data:,hello":                    true,
		"data:;base64,AAAA":              true,
		"Data:Text/Plain;charset=x,abc":  true,
		"data: hello, world":             false,
		"data:image png,x":               false,
		"data:no comma here":             false,
		"database:postgres,mysql":        false,
		"metadata:image/png;base64,AAAA": false,
	} {
		if got := isDataURI(s); got != want {
			t.Errorf("isDataURI(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNormalizeTimestamp(t *testing.T) {
	for in, want := range map[string]string{
		"2020-08-13T17:54:16.691697+02:00": "2020-08-13T15:54:16.691697Z",
		"2020-08-13T00:30:00-05:30":        "2020-08-13T06:00:00Z",
		"2020-08-13T15:54:16+00:00":        "2020-08-13T15:54:16Z",
		"2020-08-13T15:54:16Z":             "",
		"2020-08-13 15:54:16+02:00":        "",
		"2020-13-45T99:99:99+02:00":        "",
		"not a timestamp at all, long too": "",
	} {
		got, ok := normalizeTimestamp(in)
		if ok != (want != "") || got != want {
			t.Errorf("normalizeTimestamp(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}
