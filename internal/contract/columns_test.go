package contract

import (
	"slices"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
)

func TestColumns(t *testing.T) {
	tests := []struct {
		name       string
		declared   []string
		keys       []string
		want       []string
		sortedKeys bool // the keys are strictly increasing: AppendSortedKeys takes them
	}{
		{"declared, then the rest sorted", []string{"c"}, []string{"b", "c", "a"}, []string{"c", "a", "b"}, false},
		{"declared absent from the body", []string{"z", "a"}, []string{"a"}, []string{"z", "a"}, true},
		{"duplicates declared", []string{"a", "a", "b"}, []string{"b"}, []string{"a", "b"}, true},
		{"none declared: sorted keys", nil, []string{"b", "a"}, []string{"a", "b"}, false},
		{"none declared, keys already sorted", nil, []string{"a", "b", "c"}, []string{"a", "b", "c"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := plog.NewLogRecord()
			if tt.declared != nil {
				SetFeatureNames(lr, tt.declared)
			}
			body := lr.Body().SetEmptyMap()
			for _, k := range tt.keys {
				body.PutEmpty(k)
			}
			if got := Columns(lr); !slices.Equal(got, tt.want) {
				t.Errorf("Columns = %q, want %q", got, tt.want)
			}
			got, ok := AppendSortedKeys([]string{"keep"}, lr.Body())
			if ok != tt.sortedKeys || ok && !slices.Equal(got[1:], tt.keys) || !ok && len(got) != 1 {
				t.Errorf("AppendSortedKeys = %q, %v", got, ok)
			}
		})
	}
}
