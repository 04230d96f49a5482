package report

import "testing"

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    []float64
		want Spread
	}{
		{"odd", []float64{3, 1, 2}, Spread{Median: 2, Min: 1, Max: 3}},
		{"even", []float64{4, 1, 3, 2}, Spread{Median: 2.5, Min: 1, Max: 4}},
		{"one", []float64{7}, Spread{Median: 7, Min: 7, Max: 7}},
		{"empty", nil, Spread{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]float64(nil), tc.v...)
			if got := Summarize(in); got != tc.want {
				t.Fatalf("Summarize(%v) = %+v, want %+v", tc.v, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.v[i] {
					t.Fatalf("Summarize reordered its input: %v", in)
				}
			}
		})
	}
}
