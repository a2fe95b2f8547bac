/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/WilcoxonSignedRank.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace agcl {

namespace {
// Average ranks (1-based) of `values`, ties sharing the mean of their positions; also the sizes
// of the groups of equal values.
std::vector<double>
AverageRanks(const std::vector<double> & values, std::vector<int> & groups)
{
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  groups.clear();
  for (size_t i = 0; i < order.size();)
  {
    size_t j = i + 1;
    while (j < order.size() && values[order[j]] == values[order[i]])
      ++j;
    const double rank = (i + 1 + j) / 2.0; // mean of positions i+1 .. j
    for (size_t k = i; k < j; ++k)
      ranks[order[k]] = rank;
    groups.push_back(static_cast<int>(j - i));
    i = j;
  }
  return ranks;
}

// Number of subsets of {1..n} with each sum 0..n(n+1)/2, divided by 2^n: the null distribution of R+.
std::vector<double>
ExactDistribution(int n)
{
  std::vector<double> counts(static_cast<size_t>(n) * (n + 1) / 2 + 1, 0.0);
  counts[0] = 1.0;
  int maximum = 0;
  for (int k = 1; k <= n; ++k)
  {
    maximum += k;
    for (int s = maximum; s >= k; --s)
      counts[s] += counts[s - k];
  }
  const double total = std::ldexp(1.0, n);
  for (double & c : counts)
    c /= total;
  return counts;
}
} // namespace

WilcoxonResult
WilcoxonSignedRank(const std::vector<double> & x,
                   const std::vector<double> & y,
                   const std::string &         method,
                   const std::string &         zeroMethod)
{
  if (x.size() != y.size())
    throw std::invalid_argument("WilcoxonSignedRank: the samples have " + std::to_string(x.size()) + " and " +
                                std::to_string(y.size()) + " values; expected pairs");
  if (method != "auto" && method != "exact" && method != "approx")
    throw std::invalid_argument("WilcoxonSignedRank: method '" + method + "': expected auto, exact or approx");
  if (zeroMethod != "wilcox" && zeroMethod != "pratt" && zeroMethod != "zsplit")
    throw std::invalid_argument("WilcoxonSignedRank: zero method '" + zeroMethod +
                                "': expected wilcox, pratt or zsplit");
  std::vector<double> d(x.size());
  for (size_t i = 0; i < x.size(); ++i)
  {
    d[i] = x[i] - y[i];
    if (!std::isfinite(d[i]))
      throw std::invalid_argument("WilcoxonSignedRank: pair " + std::to_string(i) + " is not finite");
  }
  const int zeros = static_cast<int>(std::count(d.begin(), d.end(), 0.0));
  if (zeros == static_cast<int>(d.size()))
    throw std::invalid_argument("WilcoxonSignedRank: every difference is zero (or there are none)");
  if (zeroMethod == "wilcox")
    d.erase(std::remove(d.begin(), d.end(), 0.0), d.end());

  std::vector<double> magnitude(d.size());
  std::transform(d.begin(), d.end(), magnitude.begin(), [](double v) { return std::abs(v); });
  std::vector<int>    groups;
  std::vector<double> ranks = AverageRanks(magnitude, groups);
  const bool          ties = std::any_of(groups.begin(), groups.end(), [](int g) { return g > 1; });
  const int           n = static_cast<int>(d.size());

  WilcoxonResult result;
  result.n = n;
  result.method = method == "auto" ? (n <= 50 && !ties && (zeros == 0) ? "exact" : "approx") : method;
  if (result.method == "exact" && (ties || zeros > 0))
    throw std::invalid_argument("WilcoxonSignedRank: the exact distribution needs differences without ties or zeros");

  double plus = 0, minus = 0, zeroRanks = 0;
  for (int i = 0; i < n; ++i)
  {
    if (d[i] > 0)
      plus += ranks[i];
    else if (d[i] < 0)
      minus += ranks[i];
    else
      zeroRanks += ranks[i];
  }
  if (zeroMethod == "zsplit")
  {
    plus += zeroRanks / 2;
    minus += zeroRanks / 2;
  }
  result.statistic = std::min(plus, minus);

  if (result.method == "exact")
  {
    const std::vector<double> pmf = ExactDistribution(n);
    const auto                r = static_cast<size_t>(plus);
    if (r == (pmf.size() - 1) / 2)
    {
      result.pvalue = 1.0;
    }
    else
    {
      double less = 0, greater = 0;
      for (size_t s = 0; s < pmf.size(); ++s)
      {
        if (s <= r)
          less += pmf[s];
        if (s >= r)
          greater += pmf[s];
      }
      result.pvalue = std::min(1.0, 2 * std::min(less, greater));
    }
    return result;
  }

  double mean = n * (n + 1.0) * 0.25;
  double variance = n * (n + 1.0) * (2.0 * n + 1.0);
  if (zeroMethod == "pratt")
  {
    mean -= zeros * (zeros + 1.0) * 0.25;
    variance -= zeros * (zeros + 1.0) * (2.0 * zeros + 1.0);
    // Tie groups among the non-zero differences only.
    std::vector<double> nonZero;
    for (int i = 0; i < n; ++i)
      if (d[i] != 0)
        nonZero.push_back(ranks[i]);
    AverageRanks(nonZero, groups);
  }
  for (const int t : groups)
    if (t > 1)
      variance -= 0.5 * t * (static_cast<double>(t) * t - 1.0);
  const double se = std::sqrt(variance / 24.0);
  result.z = (result.statistic - mean) / se;
  result.pvalue = std::min(1.0, std::erfc(std::abs(result.z) / std::sqrt(2.0)));
  return result;
}

} // namespace agcl
