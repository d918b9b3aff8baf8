import { SQL_FOR_TESTS } from '/work/wt/r1-rollup/receiver/src/admin/queries';
console.log(SQL_FOR_TESTS[process.argv[2] as keyof typeof SQL_FOR_TESTS]);
