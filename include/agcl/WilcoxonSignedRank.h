/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_WilcoxonSignedRank_h
#define agcl_WilcoxonSignedRank_h

#include <string>
#include <vector>

namespace agcl {

/** Result of a two-sided Wilcoxon signed-rank test. */
struct WilcoxonResult
{
  double      statistic = 0; ///< T = min(R+, R-)
  double      pvalue = 1;
  double      z = 0;  ///< the normal deviate (approximation only)
  int         n = 0;  ///< differences ranked (after dropping zeros for "wilcox")
  std::string method; ///< "exact" or "approx"
};

/** Two-sided Wilcoxon signed-rank test of the paired samples x and y (d = x - y), as the paper
 *  compares methods per organ.
 *
 *  method: "exact" (the exact null distribution of R+; needs no ties and no zero differences),
 *  "approx" (normal approximation without continuity correction, with the tie correction
 *  sum(t^3 - t)/48 of the variance), or "auto": exact for n <= 50 without ties or zeros,
 *  approx otherwise. zero_method for zero differences: "wilcox" (dropped), "pratt" (ranked with
 *  the others, then left out of R+ and R-, with Cureton's correction of the mean and variance)
 *  or "zsplit" (their ranks split equally between R+ and R-). These follow the definitions of
 *  scipy.stats.wilcoxon (1.10), which the tests compare against.
 *  Throws std::invalid_argument for samples of different sizes, fewer than one non-zero
 *  difference, non-finite values, an unknown method, or "exact" with ties or zeros. */
WilcoxonResult
WilcoxonSignedRank(const std::vector<double> & x,
                   const std::vector<double> & y,
                   const std::string &         method = "auto",
                   const std::string &         zeroMethod = "wilcox");

} // namespace agcl

#endif
