package contract

import "testing"

func TestSanitizeSegment(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-4o":           "gpt-4o",
		"meta/llama-3:70b": "meta_llama-3:70b",
		`models\phi-3`:     "models_phi-3",
		" claude-3.5. ":    "claude-3.5",
		"..":               "",
		"":                 "",
		"a\x00b\u200bc":    "a_b_c",
		"bad\xffutf8":      "bad_utf8",
	} {
		got := SanitizeSegment(in)
		if got != want {
			t.Errorf("SanitizeSegment(%q) = %q, want %q", in, got, want)
		}
		if got != "" {
			if err := ValidateSegment("model name", got); err != nil {
				t.Errorf("SanitizeSegment(%q) = %q is not a valid segment: %v", in, got, err)
			}
		}
	}
}
