/* libgreet.so.1, the old release shipped in the sample image: defines only GREET_1. */
#include <stdio.h>

void greet(const char *name) { printf("hello, %s\n", name); }
