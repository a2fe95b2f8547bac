/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// agcl compare A.csv B.csv: two evaluations (agcl evaluate's CSV) of the same subjects compared
// per organ and overall with the two-sided Wilcoxon signed-rank test on the paired Dice values.
// The pairs are subjects: a subject with several volumes (e.g. two phases) contributes the mean
// over its volumes, so that the test's pairs stay independent.

#include "EvaluationCsv.h"
#include "Manifest.h"
#include "OutputFiles.h"
#include "Subcommands.h"

#include "agcl/WilcoxonSignedRank.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

namespace agcl::cli {

namespace {
struct CompareOptions
{
  std::string a, b, out;
};

// One row: n pairs, means, the test (or why there is none).
std::string
Row(const std::string & name, const std::vector<double> & a, const std::vector<double> & b, std::ostream & csv)
{
  double meanA = 0, meanB = 0;
  for (size_t i = 0; i < a.size(); ++i)
  {
    meanA += a[i] / a.size();
    meanB += b[i] / b.size();
  }
  std::string p = "n/a (no pairs)", statistic, method;
  if (!a.empty())
  {
    try
    {
      const WilcoxonResult r = WilcoxonSignedRank(a, b);
      p = Fixed(r.pvalue, 4);
      statistic = Fixed(r.statistic, 1);
      method = r.method;
    }
    catch (const std::invalid_argument &)
    {
      p = "n/a (identical)";
    }
  }
  csv << name << "," << a.size() << "," << (a.empty() ? "" : Fixed(meanA, 6)) << ","
      << (a.empty() ? "" : Fixed(meanB, 6)) << "," << statistic << "," << (method.empty() ? "" : p) << "," << method
      << "\n";
  return "| " + name + " | " + std::to_string(a.size()) + " | " + (a.empty() ? "" : Fixed(meanA, 3)) + " | " +
         (a.empty() ? "" : Fixed(meanB, 3)) + " | " + p + " |\n";
}

int
RunCompare(const CompareOptions & options)
{
  const Evaluation   a = ReadEvaluation(options.a), b = ReadEvaluation(options.b);
  std::ostringstream table, csv;
  table << "Dice of A = " << options.a << " vs B = " << options.b
        << " (two-sided Wilcoxon signed-rank test on paired subjects)\n\n"
        << "| organ | pairs | mean Dice A | mean Dice B | p |\n| --- | --- | --- | --- | --- |\n";
  csv << "organ,pairs,mean_dice_a,mean_dice_b,statistic,pvalue,method\n";
  // Overall: per subject, the mean Dice over the organs both evaluations have for it.
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> perSubject;
  for (const auto & organ : a.organs)
  {
    if (std::find(b.organs.begin(), b.organs.end(), organ) == b.organs.end())
      continue;
    std::vector<double> da, db;
    for (const auto & [key, volumes] : a.dice)
    {
      if (key.second != organ)
        continue;
      const auto other = b.dice.find(key);
      if (other == b.dice.end())
        continue;
      // The subject's mean over the volumes both evaluations have.
      double  va = 0, vb = 0;
      int64_t n = 0;
      for (const auto & [volume, value] : volumes)
      {
        const auto match = other->second.find(volume);
        if (match == other->second.end())
          continue;
        va += value;
        vb += match->second;
        ++n;
      }
      if (n == 0)
        continue;
      da.push_back(va / n);
      db.push_back(vb / n);
      perSubject[key.first].first.push_back(va / n);
      perSubject[key.first].second.push_back(vb / n);
    }
    table << Row(organ, da, db, csv);
  }
  // Volumes that one evaluation has and the other lacks are left out of the pairs: say so.
  auto unmatched = [](const Evaluation & x, const Evaluation & y) {
    int64_t count = 0;
    for (const auto & [key, volumes] : x.dice)
      for (const auto & entry : volumes)
      {
        const auto other = y.dice.find(key);
        count += other == y.dice.end() || other->second.count(entry.first) == 0 ? 1 : 0;
      }
    return count;
  };
  if (const int64_t onlyA = unmatched(a, b), onlyB = unmatched(b, a); onlyA + onlyB > 0)
    std::cerr << "note: " << onlyA << " (subject, organ, image) Dice values of A and " << onlyB
              << " of B have no counterpart in the other file and are not compared (images are matched by the "
                 "'image' column)\n";
  std::vector<double> oa, ob;
  for (const auto & [subject, values] : perSubject)
  {
    double ma = 0, mb = 0;
    for (size_t i = 0; i < values.first.size(); ++i)
    {
      ma += values.first[i] / values.first.size();
      mb += values.second[i] / values.second.size();
    }
    oa.push_back(ma);
    ob.push_back(mb);
  }
  table << Row("overall (subject means)", oa, ob, csv);
  if (perSubject.empty())
  {
    throw InputError("'" + options.a + "' and '" + options.b + "' have no (subject, organ) pair with a Dice in common");
  }
  std::cout << table.str();
  if (!options.out.empty())
  {
    WriteTextAtomically(options.out, csv.str());
    std::cout << "\nwrote " << options.out << std::endl;
  }
  return kSuccess;
}
} // namespace

void
RegisterCompare(CLI::App & app, Runner & runner)
{
  auto       options = std::make_shared<CompareOptions>();
  CLI::App * sub = app.add_subcommand(
    "compare",
    "Compare two evaluations (CSV files of agcl evaluate) of the same subjects: per organ and overall, the mean Dice "
    "of each and the two-sided Wilcoxon signed-rank p-value on the values paired by subject (a subject with several "
    "volumes counts once, with its mean) (exact for up to 50 pairs without "
    "ties or zeros, normal approximation otherwise; Documentation/evaluation.md)");
  sub->add_option("a", options->a, "evaluation CSV of method A")->required();
  sub->add_option("b", options->b, "evaluation CSV of method B")->required();
  sub->add_option("--out", options->out, "also write the comparison as CSV");
  sub->callback([options, &runner] { runner = [options] { return RunCompare(*options); }; });
}

} // namespace agcl::cli
