package report

import "slices"

// Spread is the median of a sample with its smallest and largest values.
type Spread struct{ Median, Min, Max float64 }

// Summarize returns v's spread (v is not modified); the median of an even count is the mean of
// the middle two. The zero Spread for an empty v.
func Summarize(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: m, Min: s[0], Max: s[len(s)-1]}
}
