/* libgreet.so.1, the newer release the program `needs-newer` was linked against:
   adds greet_loudly at version GREET_2. Not shipped in the sample image. */
#include <stdio.h>

void greet(const char *name) { printf("hello, %s\n", name); }
void greet_loudly(const char *name) { printf("HELLO, %s!\n", name); }
