/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// For test/python/test_wilcoxon.py: reads "METHOD ZERO_METHOD" then a line of x and a line of y
// from stdin, prints "statistic pvalue z n method" of agcl::WilcoxonSignedRank, or "error: ...".
#include "agcl/WilcoxonSignedRank.h"

#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

int
main()
{
  std::string method, zeroMethod, line;
  std::getline(std::cin, line);
  std::istringstream(line) >> method >> zeroMethod;
  auto readLine = [] {
    std::string text;
    std::getline(std::cin, text);
    std::istringstream  in(text);
    std::vector<double> values;
    for (double v; in >> v;)
      values.push_back(v);
    return values;
  };
  const auto x = readLine(), y = readLine();
  try
  {
    const auto r = agcl::WilcoxonSignedRank(x, y, method, zeroMethod);
    std::printf("%.17g %.17g %.17g %d %s\n", r.statistic, r.pvalue, r.z, r.n, r.method.c_str());
  }
  catch (const std::exception & e)
  {
    std::printf("error: %s\n", e.what());
  }
  return 0;
}
