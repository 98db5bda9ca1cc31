// Package welch is the two-sample comparison behind `raterd report compare` and the HTML
// report's comparison section: Welch's interval for the difference of two means, with
// the formulas of the ClickHouse cookbook's compare_models query, and the verdict text
// both print.
package welch

import "math"

// Stats are the scored rows of one side of a comparison: their number, mean score and
// sample variance.
type Stats struct {
	N        uint64
	Mean     float64
	Variance float64
}

// FromSums returns the Stats of n values given their sum and sum of squares. The sample
// variance (sumSquares − sum²/n) / (n − 1) can come out slightly negative from rounding
// when every value is the same; it is clamped to 0. With n < 2 the variance is NaN, and
// with n = 0 the mean is NaN too.
func FromSums(n uint64, sum, sumSquares float64) Stats {
	if n == 0 {
		return Stats{Mean: math.NaN(), Variance: math.NaN()}
	}
	s := Stats{N: n, Mean: sum / float64(n), Variance: math.NaN()}
	if n >= 2 {
		s.Variance = max(0, (sumSquares-sum*sum/float64(n))/float64(n-1))
	}
	return s
}

// Result is the comparison of two samples, as compare_models computes it, plus the t
// statistic.
type Result struct {
	NA, NB             uint64
	MeanA, MeanB, Diff float64
	StdErr, DF         float64
	// T is Welch's t statistic, Diff / StdErr: how many standard errors B − A is from 0.
	T float64
	// TCrit is the critical value, the 0.975 quantile of Student's t with DF degrees of
	// freedom: the 95% interval is Diff ± TCrit × StdErr, and it excludes 0 exactly when
	// |T| > TCrit.
	TCrit     float64
	Low, High float64
}

// Compare finishes a comparison from the counts, means and sample variances of A and B
// with compare_models' formulas: diff = mean_b − mean_a, the Welch standard error and
// degrees of freedom, and t_crit from the same Cornish–Fisher expansion and small-df
// table; and the t statistic diff / std_err. With fewer than 2 rows on a side the
// interval is NaN.
func Compare(sa, sb Stats) Result {
	nA, nB, varA, varB := sa.N, sb.N, sa.Variance, sb.Variance
	if nA < 2 {
		varA = math.NaN()
	}
	if nB < 2 {
		varB = math.NaN()
	}
	a, b := varA/float64(nA), varB/float64(nB)
	r := Result{NA: nA, NB: nB, MeanA: sa.Mean, MeanB: sb.Mean, Diff: sb.Mean - sa.Mean}
	r.StdErr = math.Sqrt(a + b)
	r.T = r.Diff / r.StdErr
	r.DF = (a + b) * (a + b) / (a*a/(float64(nA)-1) + b*b/(float64(nB)-1))
	switch df := r.DF; {
	case df < 1:
		r.TCrit = math.NaN()
	case df < 2:
		r.TCrit = 12.7062
	case df < 3:
		r.TCrit = 4.3027
	default:
		r.TCrit = 1.959964 + 2.372271/df + 2.822499/(df*df) + 2.555850/(df*df*df) + 1.589534/(df*df*df*df)
	}
	r.Low = r.Diff - r.TCrit*r.StdErr
	r.High = r.Diff + r.TCrit*r.StdErr
	return r
}

// Verdict says what the 95% interval [low, high] of B − A means: a short word
// ("significant", "not significant", "undefined") and a sentence.
func Verdict(low, high float64) (short, long string) {
	switch {
	case math.IsNaN(low) || math.IsNaN(high) || math.IsInf(low, 0) || math.IsInf(high, 0):
		return "undefined", "no verdict: the interval is undefined (each side needs at least 2 scored rows, and the scores some spread)"
	case low > 0:
		return "significant", "significant at 5% (the 95% CI excludes 0): B scores higher than A"
	case high < 0:
		return "significant", "significant at 5% (the 95% CI excludes 0): B scores lower than A"
	}
	return "not significant", "not significant at 5% (the 95% CI includes 0)"
}
